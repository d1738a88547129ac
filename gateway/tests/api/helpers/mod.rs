//! What every gateway integration test starts from: [`TestApp`] (the real
//! gateway on 127.0.0.1 port 0 with a fresh database), and the outside
//! world it talks to.

pub mod app;
pub mod proxy;
pub mod s3;
pub mod sign_in;

pub use app::*;
