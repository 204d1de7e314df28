//! [`hash_key`]: the hash of a call's key that every client of a service agrees on, and
//! [`HashKey`]: the bytes of a typed key. Always built: the generated clients key calls
//! with `#[prpc(hash_key = "...")]` whether or not the `cluster` feature (which balances by
//! the key) is on.

use std::fmt;

use bytes::Bytes;
use xxhash_rust::xxh64::xxh64;

/// The 64-bit hash of a call's key: XXH64 of its bytes with seed 0.
///
/// Stable across processes, platforms, Rust versions and languages, so every client of a
/// service sends a key to the same endpoint (see [`ConsistentHash`](super::ConsistentHash)).
///
/// ```
/// use prpc::balance::hash_key;
///
/// assert_eq!(hash_key(b""), 0xef46_db37_51d8_e999); // XXH64's published value for ""
/// assert_eq!(hash_key(b"user-42"), hash_key("user-42".as_bytes()));
/// ```
pub fn hash_key(key: &[u8]) -> u64 {
    xxh64(key, 0)
}

/// A value that can be a call's key: its [`hash_key`] is that of bytes any language can
/// write, so a client in another language sends the same key to the same endpoint.
///
/// The bytes are:
/// - `str`, `String`: the UTF-8 text; `char`: its UTF-8 encoding;
/// - `[u8]`, `Vec<u8>`, [`Bytes`]: the bytes themselves;
/// - integers of every width, signed or not: their decimal text, `-` for a negative one
///   (`42u64` and `"42"` are one key, and so are `42u8` and `42i64`);
/// - `bool`: `true` or `false`;
/// - `&T`: those of `T`.
///
/// `#[prpc(hash_key = "arg")]` on a service method keys each call by its argument `arg`,
/// which may be any of these, a type of yours implementing the trait, or an `Option` of one
/// (`None`: the call has no key).
///
/// ```
/// use prpc::balance::{HashKey, hash_key};
///
/// assert_eq!(42u64.hash_key(), hash_key(b"42"));
/// assert_eq!((-7i32).hash_key(), "-7".hash_key());
/// assert_eq!(true.hash_key(), hash_key(b"true"));
///
/// /// An account, keyed by its number as text.
/// struct Account(u32);
///
/// impl HashKey for Account {
///     fn hash_key(&self) -> u64 {
///         self.0.hash_key()
///     }
/// }
/// assert_eq!(Account(7).hash_key(), hash_key(b"7"));
/// ```
pub trait HashKey {
    /// The key's hash: [`hash_key`] of its bytes.
    fn hash_key(&self) -> u64;
}

impl HashKey for str {
    fn hash_key(&self) -> u64 {
        hash_key(self.as_bytes())
    }
}

impl HashKey for String {
    fn hash_key(&self) -> u64 {
        hash_key(self.as_bytes())
    }
}

impl HashKey for [u8] {
    fn hash_key(&self) -> u64 {
        hash_key(self)
    }
}

impl HashKey for Vec<u8> {
    fn hash_key(&self) -> u64 {
        hash_key(self)
    }
}

impl HashKey for Bytes {
    fn hash_key(&self) -> u64 {
        hash_key(self)
    }
}

impl HashKey for bool {
    fn hash_key(&self) -> u64 {
        hash_key(if *self { b"true" } else { b"false" })
    }
}

impl HashKey for char {
    fn hash_key(&self) -> u64 {
        hash_key(self.encode_utf8(&mut [0; 4]).as_bytes())
    }
}

impl<T: HashKey + ?Sized> HashKey for &T {
    fn hash_key(&self) -> u64 {
        (**self).hash_key()
    }
}

macro_rules! decimal_keys {
    ($($int:ty),*) => {$(
        impl HashKey for $int {
            fn hash_key(&self) -> u64 {
                let mut text = Decimal::default();
                // Writing to a buffer wide enough for any integer cannot fail.
                let _ = fmt::Write::write_fmt(&mut text, format_args!("{self}"));
                hash_key(text.as_bytes())
            }
        }
    )*};
}

decimal_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// An integer's decimal text, on the stack: 40 bytes hold `i128::MIN`.
struct Decimal {
    bytes: [u8; 40],
    len: usize,
}

impl Default for Decimal {
    fn default() -> Self {
        Decimal {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl Decimal {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for Decimal {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}
