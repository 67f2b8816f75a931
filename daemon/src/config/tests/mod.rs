use super::*;
use time::format_description::well_known::Rfc3339;

const GOOD: &str = r#"
[capture]
interface = "eth1"
queues = [0, 1]

[domestic]
prefixes = ["192.0.2.0/24", "2001:db8::/32"]

[measures.transit]
enabled = true
not_before = "2026-01-01T00:00:00Z"
not_after = 2030-01-01T00:00:00Z

[[indicators]]
name = "c2"
prefixes = ["203.0.113.0/24"]

[records]
path = "records.jsonl"
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(Path::new("/etc/furui/test.toml"), text)
}

#[test]
fn a_good_config_loads_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.capture.interface, "eth1");
    assert_eq!(c.capture.queues, vec![0, 1]);
    assert_eq!(c.capture.xdp_mode, XdpMode::Native);
    assert_eq!(c.capture.mode, CaptureMode::Mirror);
    assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.records.path, PathBuf::from("/etc/furui/records.jsonl"));
    assert_eq!(c.domestic.len(), 2);
    assert_eq!(c.indicators[0].name, "c2");
    let t = OffsetDateTime::parse("2027-06-01T00:00:00Z", &Rfc3339).unwrap();
    let a = c.authorized_at(t);
    assert!(a[&Measure::Transit]);
    assert!(!a[&Measure::Inbound], "an unconfigured measure is never authorized");
    let late = OffsetDateTime::parse("2030-01-01T00:00:00Z", &Rfc3339).unwrap();
    assert!(!c.authorized_at(late)[&Measure::Transit], "not_after is exclusive");
}

#[test]
fn every_error_is_reported_with_its_line() {
    let bad = r#"
[capture]
interface = "eth1"
queues = [0, 0]
frame_size = 1000
colour = "blue"

[domestic]
prefixes = ["192.0.2.0/24", "300.1.1.1/8"]

[measures.transit]
enabled = true
not_before = "yesterday"
not_after = "2030-01-01T00:00:00Z"

[measures.sideways]
enabled = true

[records]
path = "r.jsonl"

[metrics]
listen = "localhost"

[extra]
x = 1
"#;
    let errs = parse(bad).unwrap_err().0;
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    let text = ConfigErrors(errs.clone()).to_string();
    // capture: unknown field stops serde for that section, so the section
    // reports one error; the other sections still report theirs.
    assert!(text.contains("colour"), "{text}");
    assert!(lines.contains(&6), "unknown field at line 6: {text}");
    assert!(lines.contains(&9), "bad prefix at line 9: {text}");
    assert!(lines.contains(&13), "bad time at line 13: {text}");
    assert!(lines.contains(&16), "unknown measure at line 16: {text}");
    assert!(lines.contains(&23), "bad listen address at line 23: {text}");
    assert!(lines.contains(&25), "unknown section at line 25: {text}");
    assert!(errs.len() >= 6, "{text}");
}

#[test]
fn semantic_errors_in_one_section_are_all_reported() {
    let bad = GOOD.replace(
        "queues = [0, 1]",
        "queues = [0, 0]\nframe_size = 1000\nbatch_size = 0\nidle_nap_us = 20001",
    );
    let errs = parse(&bad).unwrap_err().0;
    let text = ConfigErrors(errs.clone()).to_string();
    assert_eq!(errs.len(), 4, "{text}");
    assert!(
        text.contains("listed twice")
            && text.contains("frame_size 1000")
            && text.contains("batch_size 0")
            && text.contains("idle_nap_us 20001 is above 20000"),
        "{text}"
    );
    // The longest allowed nap is accepted.
    let ok = GOOD.replace("queues = [0, 1]", "queues = [0, 1]\nidle_nap_us = 20000");
    assert_eq!(
        parse(&ok).unwrap().capture.idle_nap,
        std::time::Duration::from_millis(20)
    );
}

#[test]
fn missing_sections_and_syntax_errors() {
    let errs = parse("[domestic]\nprefixes = [\n").unwrap_err().0;
    assert!(!errs.is_empty());
    let errs = parse("[domestic]\nprefixes = []\n").unwrap_err().0;
    let text = ConfigErrors(errs).to_string();
    assert!(
        text.contains("missing section [capture]") && text.contains("missing section [records]"),
        "{text}"
    );
}

#[test]
fn window_order_is_checked() {
    let bad = GOOD.replace("2030-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
    let text = parse(&bad).unwrap_err().to_string();
    assert!(text.contains("not_before must be earlier than not_after"), "{text}");
}

#[test]
fn retention_needs_the_audit_trail_and_keys_outside_the_store() {
    let text = format!(
        "{GOOD}\n[retention]\ndir = \"/var/lib/furui/store\"\nkey_dir = \"/var/lib/furui/store/keys\"\nepoch_secs = 0\n"
    );
    let errs = parse(&text).unwrap_err().0;
    let msg = ConfigErrors(errs.clone()).to_string();
    assert_eq!(errs.len(), 3, "{msg}");
    assert!(msg.contains("[retention] needs [audit]"), "{msg}");
    assert!(msg.contains("key_dir must not be inside dir"), "{msg}");
    assert!(msg.contains("epoch_secs must be at least 1"), "{msg}");
    let lines = GOOD.lines().count();
    assert!(msg.contains(&format!(":{}:", lines + 4)), "key_dir's line: {msg}");
    let ok = format!(
        "{GOOD}\n[audit]\ndir = \"/var/lib/furui/audit\"\n\n[retention]\ndir = \"/var/lib/furui/store\"\nkey_dir = \"/var/lib/furui/retention-keys\"\ninbound_secs = 600\n"
    );
    let r = parse(&ok).unwrap().retention.unwrap();
    assert_eq!(r.inbound, std::time::Duration::from_secs(600));
    assert_eq!(r.transit, std::time::Duration::from_secs(30 * 86_400));
    assert_eq!(r.epoch, std::time::Duration::from_secs(3_600));
}

#[test]
fn without_a_decap_section_every_encapsulation_is_opened() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.decap, crate::classify::walk::DecapConfig::DEFAULT);
    for e in crate::classify::walk::Encap::ALL {
        assert!(c.decap.is_open(e), "{}", e.name());
    }
    assert!(c.warnings.is_empty());
}

#[test]
fn a_decap_section_sets_the_walk_and_warns_about_outer_classification() {
    use crate::classify::walk::{Encap, MplsPw};
    let text = format!(
        "{GOOD}\n[decap]\nopen = [\"mpls\", \"vxlan\"]\nouter = [\"gre\"]\nvxlan_port = 8472\nmax_layers = 2\nmpls_max_labels = 6\nmpls_pw = \"ethernet_cw\"\n"
    );
    let c = parse(&text).unwrap();
    let d = c.decap;
    assert!(d.is_open(Encap::Mpls) && d.is_open(Encap::Vxlan));
    assert!(!d.is_open(Encap::Gre) && !d.is_open(Encap::Geneve));
    assert_eq!(d.outer, 1 << (Encap::Gre as u32));
    assert_eq!((d.vxlan_port, d.geneve_port), (8472, 6081));
    assert_eq!((d.max_layers, d.mpls_max_labels), (2, 6));
    assert_eq!(d.mpls_pw, MplsPw::EthernetControlWord);
    assert_eq!(c.warnings.len(), 1);
    let w = &c.warnings[0];
    let line = GOOD.lines().count() + 4;
    assert_eq!(w.line, line, "{w}");
    assert!(
        w.message.contains("gre frames are classified on their OUTER header"),
        "{w}"
    );
}

#[test]
fn decap_mistakes_are_each_reported_with_their_line() {
    let text = format!(
        "{GOOD}\n[decap]\nopen = [\"vxlan\", \"vxlan\", \"wireguard\"]\nouter = [\"vxlan\"]\ngeneve_port = 0\ngtpu_port = 4789\nvxlan_port = 4789\nmax_layers = 0\nmpls_max_labels = 9\nmpls_pw = \"cw\"\n"
    );
    let errs = parse(&text).unwrap_err().0;
    let base = GOOD.lines().count() + 3;
    let msgs: Vec<(usize, &str)> = errs.iter().map(|e| (e.line - base, e.message.as_str())).collect();
    let has = |line: usize, text: &str| msgs.iter().any(|(l, m)| *l == line && m.contains(text));
    assert!(has(0, "`vxlan` is listed twice in `open`"), "{msgs:?}");
    assert!(has(0, "unknown encapsulation `wireguard`"), "{msgs:?}");
    assert!(has(1, "`vxlan` is both opened and in `outer`"), "{msgs:?}");
    assert!(has(2, "geneve_port must be a UDP port"), "{msgs:?}");
    assert!(has(3, "gtpu_port 4789 is also vxlan_port"), "{msgs:?}");
    assert!(has(5, "max_layers 0 must be between 1 and 4"), "{msgs:?}");
    assert!(has(6, "mpls_max_labels 9 must be between 1 and 8"), "{msgs:?}");
    assert!(has(7, "mpls_pw `cw`"), "{msgs:?}");
    assert_eq!(errs.len(), 8, "{msgs:?}");
}

#[test]
fn an_empty_domestic_set_is_refused_while_a_measure_is_enabled() {
    // No [domestic] at all: the error points at line 1.
    let no_section = GOOD.replace("[domestic]\nprefixes = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n", "");
    let text = parse(&no_section).unwrap_err().to_string();
    assert!(
        text.contains("test.toml:1:") && text.contains("holds no prefix while measure(s) transit"),
        "{text}"
    );
    // An empty list: the error points at the section.
    let empty = GOOD.replace("prefixes = [\"192.0.2.0/24\", \"2001:db8::/32\"]", "prefixes = []");
    let text = parse(&empty).unwrap_err().to_string();
    assert!(text.contains("test.toml:6:"), "{text}");
    // Nothing enabled: nothing can be captured, so it is allowed.
    assert!(parse(&empty.replace("enabled = true", "enabled = false")).is_ok());
}

#[test]
fn the_domestic_removal_limit_is_a_percentage() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.domestic_max_removed_percent, 10);
    let with = |v: &str| {
        GOOD.replace(
            "[domestic]\n",
            &format!("[domestic]\nreload_max_removed_percent = {v}\n"),
        )
    };
    assert_eq!(parse(&with("0")).unwrap().domestic_max_removed_percent, 0);
    assert_eq!(parse(&with("100")).unwrap().domestic_max_removed_percent, 100);
    let text = parse(&with("101")).unwrap_err().to_string();
    assert!(
        text.contains("test.toml:7:") && text.contains("not a percentage"),
        "{text}"
    );
}

#[test]
fn zero_copy_needs_mirror_mode_and_an_explicit_acknowledgment() {
    let with = |capture: &str| GOOD.replace("queues = [0, 1]\n", &format!("queues = [0, 1]\n{capture}"));
    assert_eq!(parse(GOOD).unwrap().capture.bind, BindMode::Auto);
    let text = parse(&with("bind = \"zero_copy\"\n")).unwrap_err().to_string();
    assert!(
        text.contains("test.toml:5:") && text.contains("zero_copy_exposes_dropped_frames = true"),
        "{text}"
    );
    let ok = parse(&with("bind = \"zero_copy\"\nzero_copy_exposes_dropped_frames = true\n")).unwrap();
    assert_eq!(ok.capture.bind, BindMode::ZeroCopy);
    let text = parse(&with(
        "bind = \"zero_copy\"\nzero_copy_exposes_dropped_frames = true\nmode = \"inline\"\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        text.contains("test.toml:5:") && text.contains("cannot be used with mode = \"inline\""),
        "{text}"
    );
    assert!(parse(&with("bind = \"copy\"\nmode = \"inline\"\n")).is_ok());
}

mod approvals;
mod export;

#[test]
fn worker_cpus_are_one_per_queue_and_never_twice() {
    let base = "[capture]\ninterface = \"eth1\"\nqueues = [0, 1]\n";
    let ok = parse(&format!("{base}cpus = [2, 3]\n[records]\npath = \"r\"\n")).unwrap();
    assert_eq!(
        (ok.capture.cpu_of(0), ok.capture.cpu_of(1), ok.capture.cpu_of(7)),
        (Some(2), Some(3), None)
    );
    let unpinned = parse(&format!("{base}[records]\npath = \"r\"\n")).unwrap();
    assert_eq!(unpinned.capture.cpu_of(0), None);
    for (cpus, want) in [
        ("[2]", "lists 1 CPUs for 2 queues"),
        ("[2, 2]", "cpu 2 is listed twice"),
        ("[2, 5000]", "cpu 5000 is above the maximum 1023"),
    ] {
        let errs = parse(&format!("{base}cpus = {cpus}\n[records]\npath = \"r\"\n")).unwrap_err();
        let text = errs.to_string();
        assert!(text.contains("test.toml:4:") && text.contains(want), "{cpus}: {text}");
    }
}

#[test]
fn busy_polling_is_bounded() {
    let base = "[capture]\ninterface = \"eth1\"\n";
    let ok = parse(&format!("{base}busy_poll_us = 50\n[records]\npath = \"r\"\n")).unwrap();
    assert_eq!((ok.capture.busy_poll_us, ok.capture.busy_poll_budget), (50, 64));
    let errs = parse(&format!(
        "{base}busy_poll_us = 5000\nbusy_poll_budget = 0\n[records]\npath = \"r\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        errs.contains("test.toml:3:") && errs.contains("busy_poll_us 5000 is above 1000"),
        "{errs}"
    );
    assert!(
        errs.contains("test.toml:4:") && errs.contains("busy_poll_budget 0 must be between 1 and 1024"),
        "{errs}"
    );
}

#[test]
fn the_appliance_id_defaults_to_the_host_name_and_is_checked() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let c = parse(GOOD).unwrap();
    assert_eq!(c.appliance, host.trim());
    assert_eq!(c.export.appliance, host.trim());
    let c = parse(&format!("[appliance]\nid = \"tokyo-1\"\n{GOOD}")).unwrap();
    assert_eq!(
        (c.appliance.as_str(), c.export.appliance.as_str()),
        ("tokyo-1", "tokyo-1")
    );
    let e = parse(&format!("[appliance]\nid = \"tokyo 1\"\n{GOOD}")).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].line, 2);
    assert!(e.0[0].message.contains("appliance id `tokyo 1`"), "{e}");
}
