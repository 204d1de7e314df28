//! The structured payload of scenario (e): a record of a dozen fields of mixed types (numbers,
//! text, a flag, an optional note, lists, a nested struct, key/value pairs), about 1 KiB in
//! MessagePack with named fields, so that what serde costs each framework shows.
//!
//! Frameworks that carry typed values (the macro, tarpc) send and return the `Record`; the
//! byte-body programs (prpc's raw service, tonic, the raw echo) send its MessagePack encoding
//! as the body: the ceiling, with no serde on either side.

use serde::{Deserialize, Serialize};

/// A customer record, as a service might move it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The record's id.
    pub id: u64,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Whether the account is active.
    pub active: bool,
    /// A score between 0 and 1.
    pub score: f64,
    /// Balance in cents, may be negative.
    pub balance: i64,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Labels.
    pub tags: Vec<String>,
    /// Recent ratings.
    pub ratings: Vec<u32>,
    /// Where the customer lives.
    pub address: Address,
    /// A free-text note.
    pub note: Option<String>,
    /// Further attributes, as key/value pairs.
    pub attributes: Vec<(String, String)>,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166 country code.
    pub country: String,
}

impl Record {
    /// The record every call of scenario (e) sends.
    pub fn sample() -> Record {
        Record {
            id: 7_301_224_918_117_376,
            name: "Ada Augusta King, Countess of Lovelace".into(),
            email: "ada.lovelace@analytical-engine.example.org".into(),
            active: true,
            score: 0.918_273_645,
            balance: -1_234_567,
            created_at: 1_764_806_400,
            tags: [
                "mathematics",
                "poetry",
                "engines",
                "notes",
                "bernoulli",
                "premium",
                "europe",
                "beta-tester",
            ]
            .map(String::from)
            .to_vec(),
            ratings: (0..110).map(|i| (i * 37 % 1000) as u32).collect(),
            address: Address {
                street: "12 St James's Square".into(),
                city: "London".into(),
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
            },
            note: Some(
                "Wrote the first published algorithm intended for a machine: the computation \
                 of Bernoulli numbers on the Analytical Engine, in Note G of her translation \
                 of Menabrea's memoir, with notes three times the memoir's length. Prefers \
                 contact by letter; invoices quarterly."
                    .into(),
            ),
            attributes: [
                ("plan", "enterprise"),
                ("region", "eu-west"),
                ("language", "en-GB"),
                ("referrer", "babbage"),
                ("segment", "research"),
                ("support", "priority"),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .to_vec(),
        }
    }

    /// The record's MessagePack encoding (named fields, as prpc's default format writes it):
    /// the body of the byte-body programs in scenario (e).
    pub fn encoded(&self) -> bytes::Bytes {
        prpc::Format::MsgPack
            .encode(self)
            .expect("a record encodes")
    }
}
