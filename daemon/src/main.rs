//! The `furui` command: run the daemon, validate configs, show counters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use furui::config::Config;
use furui::telemetry::{http, parse_exposition};

#[derive(Parser)]
#[command(
    name = "furui",
    version,
    about = "Capture appliance: select mechanical information, erase everything else"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the capture daemon until SIGTERM/SIGINT.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// If the audit trail fails verification, set it aside and start a
        /// new segment (recorded as its first entry) instead of refusing.
        #[arg(long)]
        new_segment: bool,
    },
    /// Audit trail checks for inspectors (read-only; a copy of the files and the public key suffice).
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// For the approving authority: make its key, sign approval documents
    /// (what opens a measure's window under `[approvals]`), verify one.
    Approval {
        #[command(subcommand)]
        cmd: ApprovalCmd,
    },
    /// Transparency report of aggregate figures (per period and measure)
    /// from a verified audit trail: report.json and a self-contained
    /// report.html with charts, written to --out. Given a fleet directory
    /// (one subdirectory per appliance), each appliance's report goes to
    /// OUT/NAME/ and the fleet's (per appliance and in total) to OUT.
    Report {
        /// Start of the reported time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        from: String,
        /// End of the reported time (RFC 3339, exclusive).
        #[arg(long)]
        to: String,
        /// The audit directory (or a copy of it), or a fleet's directory of them.
        dir: PathBuf,
        /// The appliance's public key; DIR/appliance.pub if not given (a
        /// fleet's members always use their own).
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// Where report.json and report.html are written.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Length of one period in the tables and charts.
        #[arg(long, default_value = "day", value_parser = ["hour", "day"])]
        period: String,
    },
    /// Validate configuration files; print every error with its line. Exit 2 on any error.
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Ask the running daemon to reload its configuration, prefixes and rules; prints the result.
    Reload {
        #[arg(long, default_value = furui::config::control::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
        /// Accept that this reload stops covering more of the domestic
        /// prefixes than `[domestic] reload_max_removed_percent` allows
        /// (recorded in the audit trail with your uid).
        #[arg(long)]
        confirm_domestic_removal: bool,
        /// Accept that this reload drops more of the rules in force than
        /// `[selection] reload_max_removed_percent` allows (an emptied or
        /// revoked feed; recorded in the audit trail with your uid).
        #[arg(long)]
        confirm_rules_removal: bool,
    },
    /// Validate a rules directory (*.toml, *.rules): every error and every
    /// refused rule with its line, then a summary by format and keyword.
    /// Exit 2 on any error, or on a refused rule without --skip-refused.
    CheckRules {
        dir: PathBuf,
        /// Load the rest when some imported rules are refused (as
        /// `[selection] skip_refused_rules = true` does).
        #[arg(long)]
        skip_refused: bool,
    },
    /// Pull every `[[selection.taxii]]` feed of a config once (or the one
    /// named) into its bundle in the rules directory; `furui reload` then
    /// loads it. The daemon pulls on its own every interval_secs.
    TaxiiPull {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        feed: Option<String>,
    },
    /// Run a pcap/pcapng file through the same parse → select → erase →
    /// record code as the live path; records to stdout, counters to stderr.
    Replay {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        pcap: PathBuf,
    },
    /// Print a readable summary of a running daemon's counters.
    Stats {
        #[arg(long, default_value = "127.0.0.1:9464")]
        metrics: SocketAddr,
    },
}

/// Logs go to stderr (journald under systemd). `FURUI_LOG` sets the level
/// filter; `FURUI_LOG_FORMAT=json` writes one JSON object per line (the
/// systemd unit sets it). No log line carries packet bytes or addresses of
/// unselected traffic: the data path logs counters and states only.
#[derive(clap::Subcommand)]
enum ApprovalCmd {
    /// Create the authority's Ed25519 key in KEY (0600; refused if it
    /// exists readable by others) and its public half in KEY.pub; print
    /// the public key.
    Keygen { key: PathBuf },
    /// Sign an approval; the document goes to --out (or stdout).
    Sign {
        /// The authority's key (from `keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The approval's reference (the committee's decision number).
        #[arg(long = "ref")]
        reference: String,
        #[arg(long, value_parser = ["transit", "inbound", "outbound"])]
        measure: String,
        /// RFC 3339, inclusive.
        #[arg(long)]
        not_before: String,
        /// RFC 3339, exclusive.
        #[arg(long)]
        not_after: String,
        /// An appliance id it covers (repeat; none: every appliance).
        #[arg(long = "appliance")]
        appliances: Vec<String>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a document against the authority's public key (and, if
    /// given, a measure and an appliance); exit 1 if it does not hold now.
    Verify {
        doc: PathBuf,
        #[arg(long)]
        authority: PathBuf,
        #[arg(long)]
        measure: Option<String>,
        #[arg(long)]
        appliance: Option<String>,
    },
}

#[derive(clap::Subcommand)]
enum AuditCmd {
    /// Verify the hash chain and every signature of DIR/trail.jsonl; print
    /// PASS with the figures, or FAIL and the first bad entry. DIR may
    /// also be a fleet's: one directory per appliance, each with its
    /// trail.jsonl and appliance.pub (PASS/FAIL per appliance and for the
    /// fleet). Exit 1 on FAIL.
    Verify {
        dir: PathBuf,
        /// The appliance's public key (DIR/appliance.pub on the appliance);
        /// required for one appliance's trail.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// A checkpoint entry a recipient kept: the trail must still hold it.
        #[arg(long)]
        witness: Option<PathBuf>,
    },
    /// Recompute an oversight check from the verified trail: `erasure`
    /// (every received frame erased), `capture` (no domestic/non-IP/
    /// malformed packet and no unauthorized measure redirected), `exports`
    /// (every export batch within a grant in force) or `retention` (every
    /// retention epoch purged on time). PASS or FAIL with the figures;
    /// exit 1 on FAIL.
    Check {
        #[arg(value_parser = ["erasure", "capture", "exports", "retention"])]
        what: String,
        /// One appliance's audit directory, or a fleet's (see `verify`).
        dir: PathBuf,
        /// Required for one appliance's trail.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// capture: the approving authority's public key; every interval
        /// with redirected packets must then lie under a signed approval.
        #[arg(long)]
        authority: Option<PathBuf>,
        /// retention: how many seconds after expiry a purge still counts as on time.
        #[arg(long, default_value_t = 60)]
        grace_secs: u64,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FURUI_LOG").unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var("FURUI_LOG_FORMAT").is_ok_and(|f| f == "json") {
        b.json().flatten_event(true).init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// `furui approval …`.
fn approval(cmd: ApprovalCmd) -> ExitCode {
    use furui::approvals::{Approval, Signed};
    let fail = |e: String| {
        eprintln!("furui approval: {e}");
        ExitCode::from(1)
    };
    match cmd {
        ApprovalCmd::Keygen { key } => match furui::audit::keygen(&key) {
            Ok(public) => {
                println!("{public}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.to_string()),
        },
        ApprovalCmd::Sign {
            key,
            reference,
            measure,
            not_before,
            not_after,
            appliances,
            out,
        } => {
            let a = Approval {
                reference,
                measure,
                not_before,
                not_after,
                appliances,
            };
            if let Err(e) = a.interval() {
                return fail(e.to_string());
            }
            if let Some(bad) = a.appliances.iter().find(|x| !furui::config::appliance::valid_id(x)) {
                return fail(format!("`{bad}` is not an appliance id"));
            }
            let signing = match furui::audit::signing_key(&key) {
                Ok(k) => k,
                Err(e) => return fail(e.to_string()),
            };
            let text = serde_json::to_string_pretty(&a.sign(&signing)).unwrap_or_default() + "\n";
            match out {
                Some(p) => match std::fs::write(&p, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(format!("{}: {e}", p.display())),
                },
                None => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
            }
        }
        ApprovalCmd::Verify {
            doc,
            authority,
            measure,
            appliance,
        } => {
            let run = || -> Result<String, String> {
                let key = furui::approvals::read_authority(&authority)?;
                let d = Signed::read(&doc).map_err(|e| e.to_string())?;
                let a = &d.approval;
                let now = time::OffsetDateTime::now_utc();
                let m = measure.as_deref().unwrap_or(&a.measure);
                let who = appliance
                    .as_deref()
                    .unwrap_or(a.appliances.first().map_or("", String::as_str));
                d.verify(&key, m, who, now).map_err(|e| e.to_string())?;
                Ok(format!(
                    "valid: approval `{}` for {} from {} to {}, {}",
                    a.reference,
                    a.measure,
                    a.not_before,
                    a.not_after,
                    if a.appliances.is_empty() {
                        "every appliance".to_string()
                    } else {
                        format!("appliances {}", a.appliances.join(", "))
                    }
                ))
            };
            match run() {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Prints an audit outcome; exit 1 on FAIL.
fn outcome(o: furui::audit::fleet::Outcome) -> ExitCode {
    for l in &o.lines {
        println!("{l}");
    }
    if o.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `furui taxii-pull`: one pull of each feed; exit 1 if any failed.
fn taxii_pull(config: &std::path::Path, only: Option<&str>) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    let feeds: Vec<_> = cfg.taxii.iter().filter(|f| only.is_none_or(|n| n == f.name)).collect();
    if feeds.is_empty() {
        eprintln!(
            "furui: no [[selection.taxii]] feed {}in {}",
            only.map(|n| format!("`{n}` ")).unwrap_or_default(),
            config.display()
        );
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("furui: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    for f in feeds {
        match rt.block_on(furui::feeds::taxii::pull(f)) {
            Ok(p) => println!(
                "{}: {} pages, {} objects, {} revoked; {} indicators in {}{}",
                f.name,
                p.pages,
                p.objects,
                p.revoked,
                p.indicators,
                f.bundle.display(),
                if p.changed {
                    " (changed: run `furui reload`)"
                } else {
                    ""
                }
            ),
            Err(e) => {
                eprintln!("furui: TAXII feed {}: {e}", f.name);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `furui check-rules`: loads with refusals counted, prints them and the
/// summary, and fails on a refusal unless told to skip.
fn check_rules(dir: &std::path::Path, skip_refused: bool) -> ExitCode {
    let opts = furui::config::rules::import::ImportOptions {
        skip_refused: true,
        ..Default::default()
    };
    match furui::config::rules::load_dir_with(dir, &opts) {
        Ok(rs) => {
            for r in &rs.imports.refusals {
                eprintln!("{r}");
            }
            let refused = rs.imports.refusals.len();
            println!(
                "{}: {} ({} rules; {} imported items, {} refused; version {}); snap: {}",
                dir.display(),
                if refused == 0 || skip_refused {
                    "ok"
                } else {
                    "refused rules"
                },
                rs.rules.len(),
                rs.imports.loaded(),
                refused,
                rs.version,
                furui::select::Snap::of_rules(&rs)
            );
            print!("{}", rs.imports);
            if refused > 0 && !skip_refused {
                eprintln!("furui: {refused} rules refused; fix them, or load the rest with --skip-refused ([selection] skip_refused_rules = true)");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::CheckConfig { files } => {
            let mut bad = false;
            for f in &files {
                match Config::load(f) {
                    Ok(c) => {
                        for w in &c.warnings {
                            eprintln!("warning: {w}");
                        }
                        println!(
                            "{}: ok ({} domestic prefixes, {} indicator sets, {} measures configured, {} encapsulations opened)",
                            f.display(),
                            c.domestic.len(),
                            c.indicators.len(),
                            c.measures.len(),
                            furui::classify::walk::Encap::ALL
                                .iter()
                                .filter(|e| c.decap.is_open(**e))
                                .count()
                        );
                        println!(
                            "  memory bound: {} (MemoryMax must not be lower)",
                            furui::config::memory::MemoryBound::of(&c)
                        );
                    }
                    Err(e) => {
                        bad = true;
                        eprint!("{e}");
                    }
                }
            }
            if bad {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Cmd::Audit {
            cmd: AuditCmd::Verify { dir, pubkey, witness },
        } => {
            let w = match witness.as_ref().map(std::fs::read_to_string).transpose() {
                Ok(w) => w,
                Err(e) => {
                    println!("FAIL: the witness cannot be read: {e}");
                    return ExitCode::from(1);
                }
            };
            outcome(furui::audit::fleet::verify(&dir, pubkey.as_deref(), w.as_deref()))
        }
        Cmd::Audit {
            cmd:
                AuditCmd::Check {
                    what,
                    dir,
                    pubkey,
                    authority,
                    grace_secs,
                },
        } => {
            let authority = match authority.as_deref().map(furui::approvals::read_authority).transpose() {
                Ok(a) => a,
                Err(e) => {
                    println!("FAIL: --authority: {e}");
                    return ExitCode::from(1);
                }
            };
            outcome(furui::audit::fleet::check(
                &what,
                &dir,
                pubkey.as_deref(),
                authority.as_ref(),
                std::time::Duration::from_secs(grace_secs),
            ))
        }
        Cmd::Approval { cmd } => approval(cmd),
        Cmd::Report {
            from,
            to,
            dir,
            pubkey,
            out,
            period,
        } => report(&from, &to, &dir, pubkey, &out, &period),
        Cmd::Run { config, new_segment } => {
            init_logging();
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::from(2);
                }
            };
            match furui::control::run::run_with(cfg, new_segment) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let chain = anyhow::Error::new(e);
                    eprintln!("furui: {chain:#}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Reload {
            socket,
            confirm_domestic_removal,
            confirm_rules_removal,
        } => match furui::control::socket::request_reload(&socket, confirm_domestic_removal, confirm_rules_removal) {
            Ok(answer) => {
                print!("{answer}");
                if answer.starts_with("ok") {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                eprintln!(
                    "furui: cannot reach the daemon at {}: {e}; is it running (as root or its user)?",
                    socket.display()
                );
                ExitCode::from(1)
            }
        },
        Cmd::CheckRules { dir, skip_refused } => check_rules(&dir, skip_refused),
        Cmd::TaxiiPull { config, feed } => taxii_pull(&config, feed.as_deref()),
        Cmd::Replay { config, pcap } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::from(2);
                }
            };
            match furui::offline::replay(&cfg, &pcap, &mut std::io::stdout().lock()) {
                Ok(report) => {
                    eprint!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("furui: {:#}", anyhow::Error::new(e));
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Stats { metrics } => match http::scrape(metrics) {
            Ok(text) => {
                print!("{}", furui::telemetry::summary::render(&parse_exposition(&text)));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("furui: cannot read metrics from {metrics}: {e}; is the daemon running (and in this network namespace)?");
                ExitCode::from(1)
            }
        },
    }
}

fn report(
    from: &str,
    to: &str,
    dir: &std::path::Path,
    pubkey: Option<PathBuf>,
    out: &std::path::Path,
    period: &str,
) -> ExitCode {
    use time::format_description::well_known::Rfc3339;
    let parse = |what: &str, s: &str| {
        time::OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| eprintln!("--{what} `{s}` is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)"))
    };
    let (Ok(from), Ok(to)) = (parse("from", from), parse("to", to)) else {
        return ExitCode::from(2);
    };
    if to <= from {
        eprintln!("--to must be later than --from");
        return ExitCode::from(2);
    }
    let period = if period == "hour" {
        furui::report::Period::Hour
    } else {
        furui::report::Period::Day
    };
    let one = |dir: &std::path::Path, pubkey: &std::path::Path| {
        furui::audit::read_verified(dir, pubkey).map(|(verified, entries)| {
            let r = furui::report::build(&entries, from, to, period, &verified.last_hash);
            (verified.appliances, r)
        })
    };
    let write = |out: &std::path::Path, json: &str, html: &str| -> Result<(), ()> {
        for (name, text) in [("report.json", json), ("report.html", html)] {
            let p = out.join(name);
            std::fs::create_dir_all(out)
                .and_then(|_| std::fs::write(&p, text))
                .map_err(|e| eprintln!("cannot write {}: {e}", p.display()))?;
            println!("{}", p.display());
        }
        Ok(())
    };
    let written = match furui::audit::fleet::members(dir) {
        Err(e) => {
            eprintln!("no report: {e}");
            return ExitCode::from(1);
        }
        Ok(None) => {
            let pubkey = pubkey.unwrap_or_else(|| dir.join(furui::audit::PUBKEY));
            let r = match one(dir, &pubkey) {
                Ok((_, r)) => r,
                Err(e) => {
                    eprintln!("no report: the trail does not verify, so its figures cannot be trusted: {e}");
                    return ExitCode::from(1);
                }
            };
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            write(out, &json, &furui::report::html::render(&r))
        }
        Ok(Some(list)) => {
            // A fleet's report is only as good as its least trustworthy
            // trail: one that does not verify stops the whole report.
            let mut members = Vec::new();
            let mut failed = false;
            for m in list {
                match one(&m.dir, &m.pubkey) {
                    Ok((appliances, report)) => members.push(furui::report::fleet::Member {
                        name: m.name,
                        appliances,
                        report,
                    }),
                    Err(e) => {
                        eprintln!("{}: the trail does not verify: {e}", m.name);
                        failed = true;
                    }
                }
            }
            if failed {
                eprintln!("no report: a fleet's figures cannot be trusted while one of its trails does not verify");
                return ExitCode::from(1);
            }
            let mut result = Ok(());
            for m in &members {
                let json = serde_json::to_string_pretty(&m.report).unwrap_or_default();
                result = result.and(write(
                    &out.join(&m.name),
                    &json,
                    &furui::report::html::render(&m.report),
                ));
            }
            let f = furui::report::fleet::combine(furui::audit::rfc3339(from), furui::audit::rfc3339(to), members);
            let json = serde_json::to_string_pretty(&f).unwrap_or_default();
            result.and(write(out, &json, &furui::report::html::render_fleet(&f)))
        }
    };
    if written.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
