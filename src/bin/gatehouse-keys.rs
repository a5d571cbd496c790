//! `gatehouse-keys`: makes the secrets of a new deployment (or a key for rotation).
//!
//! `gatehouse-keys` prints `SIGNING_KEYS` (one fresh Ed25519 private JWK, which signs access
//! tokens, and one 2048-bit RSA key, which signs the RS256 ID tokens of the OpenID Provider)
//! and `STATE_SECRET` as `.dev.vars` lines. `gatehouse-keys --rotate '<current SIGNING_KEYS>'`
//! prints the array with a new Ed25519 key appended (published now, signs after you move it
//! first); `--rotate-rsa` does the same with a new RSA key.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use gatehouse::crypto::{b64url, random_bytes};
    use gatehouse::jwt::native::{generate_ed25519_jwk, generate_rsa_jwk};
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let keys = serde_json::Value::Array(vec![generate_ed25519_jwk(), generate_rsa_jwk()]);
            println!("SIGNING_KEYS='{keys}'");
            println!("STATE_SECRET='{}'", b64url(&random_bytes::<32>()));
            println!("ADMIN_API_KEY='{}'", b64url(&random_bytes::<32>()));
        }
        [flag, current] if flag == "--rotate" || flag == "--rotate-rsa" => {
            let mut keys: Vec<serde_json::Value> = match serde_json::from_str(current) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("gatehouse-keys: the current SIGNING_KEYS is not a JSON array: {e}");
                    std::process::exit(2);
                }
            };
            keys.push(if flag == "--rotate" {
                generate_ed25519_jwk()
            } else {
                generate_rsa_jwk()
            });
            println!("{}", serde_json::Value::Array(keys));
        }
        _ => {
            eprintln!(
                "usage: gatehouse-keys [--rotate|--rotate-rsa '<current SIGNING_KEYS JSON>']"
            );
            std::process::exit(2);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
