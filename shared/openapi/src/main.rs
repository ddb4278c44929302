//! Print the public API's OpenAPI document: `cargo run -q -p archlab-openapi > docs/openapi.json`.

fn main() {
    print!("{}", archlab_openapi::json());
}
