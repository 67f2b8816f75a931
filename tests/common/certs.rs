//! A test CA with server and client certificates (openssl, as the README
//! documents), for the TLS sinks and the mutual-TLS API.

use std::process::Command;

use super::*;

/// A rig with a test CA and certificates (see `make_certs`): the rig, the
/// certificate directory, and each client's identity.
pub fn rig_with_certs(clients: &[&str]) -> (Rig, std::path::PathBuf, Vec<String>) {
    let rig = Rig::new();
    let certs = rig.path("certs");
    std::fs::create_dir(&certs).unwrap();
    let ids = make_certs(&certs, clients);
    (rig, certs, ids)
}

/// Runs a shell command; panics with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA, a server certificate for 127.0.0.1, and client certificates
/// (openssl, as the README documents); returns each client's identity as
/// the README's command computes it.
pub fn make_certs(dir: &std::path::Path, clients: &[&str]) -> Vec<String> {
    let d = dir.display();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh(&format!(
        "cd {d} && openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=furui-test-ca 2>/dev/null"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in std::iter::once(("server", "server.ext")).chain(clients.iter().map(|c| (*c, "client.ext"))) {
        sh(&format!(
            "cd {d} && openssl req {ec} -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null && openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {ext} 2>/dev/null"
        ));
    }
    clients
        .iter()
        .map(|c| {
            let hex = sh(&format!(
                "cd {d} && openssl x509 -in {c}.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum"
            ));
            format!("sha256:{}", hex.split_whitespace().next().unwrap())
        })
        .collect()
}
