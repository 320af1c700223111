//! `uniffi-bindgen generate <libcomfywire_uniffi.so> -l kotlin -l swift -o DIR`:
//! the generator for comfywire's foreign bindings. It is a workspace binary,
//! not a globally installed tool, so it always matches the uniffi version the
//! scaffolding was built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
