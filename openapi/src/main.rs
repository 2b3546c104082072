//! `gen-openapi`: prints the OpenAPI document (`make openapi` writes it to
//! functions/auth/openapi.json, which `GET /openapi.json` serves).

fn main() {
    print!("{}", openapi::render());
}
