//! A real TAXII 2.1 server for the feed tests: the OASIS reference server
//! `medallion` (installed by `make test` into target/venv), started on
//! loopback — in a test namespace when one is given — with one writable
//! collection, and stopped (by PID) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
pub const USER: &str = "furui";
pub const PASSWORD: &str = "taxii-test-password";

pub fn medallion_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/medallion");
    assert!(
        p.exists(),
        "{} is missing: run `make test` (it installs medallion)",
        p.display()
    );
    p
}

pub struct Medallion {
    child: Child,
    pub port: u16,
    ns: Option<String>,
    /// With TLS: the directory of `ca.pem`, `server.*` and the producer's
    /// `producer.*` (`certs::make_certs`); clients must present a cert.
    tls: Option<PathBuf>,
}

/// Runs medallion's own application with a TLS context that requires a
/// client certificate from the test CA (its command line has no TLS).
const TLS_LAUNCHER: &str = "import json, ssl, sys
from medallion import application_instance, register_blueprints, set_config
conf = json.load(open(sys.argv[1]))
for part in ('users', 'taxii', 'backend'):
    set_config(application_instance, part, conf)
register_blueprints(application_instance)
d = sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + '/server.pem', d + '/server.key')
ctx.load_verify_locations(d + '/ca.pem')
ctx.verify_mode = ssl.CERT_REQUIRED
application_instance.run(host='127.0.0.1', port=int(sys.argv[2]), ssl_context=ctx)
";

fn in_ns(ns: Option<&str>, program: &Path) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl Medallion {
    /// Starts the server with `page` objects per page at most.
    pub fn start(dir: &Path, ns: Option<&str>, port: u16, page: u32) -> Medallion {
        Self::start_with(dir, ns, port, page, None)
    }

    /// The same over TLS, requiring client certificates signed by the CA
    /// in `certs`.
    pub fn start_tls(dir: &Path, port: u16, page: u32, certs: &Path) -> Medallion {
        Self::start_with(dir, None, port, page, Some(certs))
    }

    fn start_with(dir: &Path, ns: Option<&str>, port: u16, page: u32, tls: Option<&Path>) -> Medallion {
        let data = dir.join("medallion-data.json");
        std::fs::write(
            &data,
            serde_json::json!({
                "/discovery": {"title": "furui test", "default": format!("http://127.0.0.1:{port}/feed/"),
                               "api_roots": [format!("http://127.0.0.1:{port}/feed/")]},
                "feed": {
                    "information": {"title": "feed", "versions": ["application/taxii+json;version=2.1"],
                                    "max_content_length": 10_485_760},
                    "status": [],
                    "collections": [{"id": COLLECTION, "title": "indicators", "can_read": true, "can_write": true,
                                     "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}]
                }
            })
            .to_string(),
        )
        .unwrap();
        let conf = dir.join("medallion.json");
        std::fs::write(
            &conf,
            serde_json::json!({
                "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                            "filename": data},
                "users": {USER: PASSWORD},
                "taxii": {"max_page_size": page}
            })
            .to_string(),
        )
        .unwrap();
        let mut cmd = match tls {
            None => {
                let mut c = in_ns(ns, &medallion_bin());
                c.args(["--host", "127.0.0.1", "--port", &port.to_string()]).arg(&conf);
                c
            }
            Some(certs) => {
                let mut c = in_ns(ns, &medallion_bin().with_file_name("python3"));
                c.args(["-c", TLS_LAUNCHER]).arg(&conf).arg(port.to_string()).arg(certs);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("medallion.log")).unwrap())
            .spawn()
            .expect("start medallion");
        let m = Medallion {
            child,
            port,
            ns: ns.map(str::to_string),
            tls: tls.map(Path::to_path_buf),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while m.python(&format!(
            "import urllib.request as u, urllib.error as e\n{}try: u.urlopen('{}/taxii2/', timeout=2{})\nexcept e.HTTPError: pass",
            m.context(),
            m.base(),
            m.context_arg()
        )) != Some(0)
        {
            assert!(Instant::now() < deadline, "medallion did not come up: {}", std::fs::read_to_string(dir.join("medallion.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(200));
        }
        m
    }

    /// Runs a python snippet (urllib) next to the server; its exit code.
    fn python(&self, code: &str) -> Option<i32> {
        in_ns(self.ns.as_deref(), Path::new("python3"))
            .args(["-c", code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .and_then(|s| s.code())
    }

    fn base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Python defining `ctx`, the producer's TLS client context (nothing
    /// without TLS), and the argument that passes it.
    fn context(&self) -> String {
        match &self.tls {
            None => String::new(),
            Some(d) => format!(
                "import ssl\nctx = ssl.create_default_context(cafile='{0}/ca.pem')\nctx.load_cert_chain('{0}/producer.pem', '{0}/producer.key')\n",
                d.display()
            ),
        }
    }

    fn context_arg(&self) -> &'static str {
        if self.tls.is_some() {
            ", context=ctx"
        } else {
            ""
        }
    }

    pub fn collection_url(&self) -> String {
        format!("{}/feed/collections/{COLLECTION}/", self.base())
    }

    /// Adds STIX objects to the collection, as a producer would.
    pub fn add(&self, objects: &[serde_json::Value]) {
        let body = serde_json::json!({ "objects": objects }).to_string();
        let code = format!(
            "import urllib.request as u, base64, sys\n{ctx}\
             r = u.Request('{url}objects/', data=sys.argv[1].encode(), method='POST')\n\
             r.add_header('Content-Type', 'application/taxii+json;version=2.1')\n\
             r.add_header('Accept', 'application/taxii+json;version=2.1')\n\
             r.add_header('Authorization', 'Basic ' + base64.b64encode(b'{USER}:{PASSWORD}').decode())\n\
             u.urlopen(r, timeout=10{arg})",
            ctx = self.context(),
            arg = self.context_arg(),
            url = self.collection_url()
        );
        let st = in_ns(self.ns.as_deref(), Path::new("python3"))
            .args(["-c", &code, &body])
            .status()
            .expect("python3");
        assert!(st.success(), "POST to medallion failed");
        // Medallion stamps date_added with the request time: keep pulls
        // that follow apart from it.
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        // `ip netns exec` execs the server, so this PID is medallion's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A STIX 2.1 indicator object.
pub fn indicator(n: u32, pattern: &str, modified: &str, revoked: bool) -> serde_json::Value {
    serde_json::json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--0b6a4f1e-0000-4000-8000-{n:012}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "name": format!("test indicator {n}"),
        "pattern": pattern, "pattern_type": "stix", "pattern_version": "2.1",
        "valid_from": "2026-01-01T00:00:00Z", "revoked": revoked
    })
}
