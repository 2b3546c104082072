//! The least a `lambda_http` function can do before its first event: the same runtime crate,
//! features, tokio flavour and release profile as the functions, and nothing else. `make bench`
//! counts the instructions each function runs from exec to its first `/invocation/next` and
//! divides by this binary's count.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(|_: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}
