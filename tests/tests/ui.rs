//! Compile errors of `#[prpc::service]`: each case in `tests/ui/` with the message and span a
//! user sees in its `.stderr` (`TRYBUILD=overwrite` regenerates them; read every diff).

#[test]
fn unsupported_service_traits_fail_to_compile_with_clear_errors() {
    trybuild::TestCases::new().compile_fail("ui/*.rs");
}
