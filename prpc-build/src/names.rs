//! The names a proto element gets in what prpc-build writes: its full proto name (what goes
//! on the wire) and the Rust name of a service's trait. The checks and the service generator
//! both need them, so they sit below both.

/// `package.Name`, or `Name` outside any package.
pub(crate) fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// The Rust name of a service's trait, from prost's UpperCamelCase name: `Self` (which prost
/// writes `Self_`, and the macro would derive `Self_Server` from, a name that warns) becomes
/// `SelfService`. The wire name stays the proto name.
pub(crate) fn rust_service_name(upper_camel_case: &str) -> String {
    match upper_camel_case {
        "Self" | "Self_" => "SelfService".to_owned(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_and_service_trait_names() {
        assert_eq!(qualified("", "Echo"), "Echo");
        assert_eq!(qualified("acme.v1", "Echo"), "acme.v1.Echo");
        assert_eq!(rust_service_name("Self_"), "SelfService");
        assert_eq!(rust_service_name("Echo"), "Echo");
    }
}
