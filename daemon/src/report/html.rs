//! The transparency report as one self-contained HTML page: inline CSS
//! and inline SVG charts, no script, no external resource — it opens the
//! same from a USB stick as from a web server. Every figure in a chart is
//! also written as a number beside it and in the tables.

use std::fmt::Write;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::fleet::FleetReport;
use super::{Figures, Report};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Thousands separated, as people read counts.
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const MEASURED: &str = "#1f6fb2";
const NEVER: &str = "#8a8f98";
const ERASED: &str = "#2e8b57";

/// Horizontal bars: one row per (label, value, colour).
fn bars(rows: &[(String, u64, &str)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (w, row_h, label_w) = (640.0, 28.0, 190.0);
    let h = row_h * rows.len().max(1) as f64 + 8.0;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (label, v, colour)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let bw = (w - label_w - 110.0) * (*v as f64) / (max as f64);
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\" class=\"l\">{label}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{bh}\" fill=\"{colour}\" rx=\"3\"/><text x=\"{vx:.1}\" y=\"{ty}\" class=\"v\">{val}</text>",
            x = label_w - 8.0,
            ty = y + 15.0,
            label = esc(label),
            bh = row_h - 8.0,
            vx = label_w + bw + 6.0,
            val = num(*v),
        );
    }
    s.push_str("</svg>");
    s
}

/// Grouped columns per period: selected, exported, purged.
fn periods(r: &Report) -> String {
    let series: Vec<[u64; 3]> = r
        .periods
        .iter()
        .map(|p| {
            let f = &p.figures;
            [f.records_selected, f.exported.values().sum(), f.purged.values().sum()]
        })
        .collect();
    let max = series.iter().flatten().copied().max().unwrap_or(0).max(1);
    let n = series.len().max(1) as f64;
    let (w, h, base) = (640.0, 220.0, 190.0);
    let slot = (w - 40.0) / n;
    let bw = (slot / 4.0).min(24.0);
    let colours = [MEASURED, "#d9822b", NEVER];
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><line x1=\"30\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\" stroke=\"#999\"/>"
    );
    for (i, vals) in series.iter().enumerate() {
        let x0 = 36.0 + slot * i as f64;
        for (j, v) in vals.iter().enumerate() {
            let bh = (base - 20.0) * (*v as f64) / (max as f64);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{c}\"><title>{v}</title></rect>",
                x = x0 + bw * j as f64,
                y = base - bh,
                c = colours[j],
            );
        }
        if series.len() <= 12 {
            let label = r.periods[i].start.get(5..16).unwrap_or("");
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{y}\" class=\"l\">{}</text>",
                esc(label),
                x = x0,
                y = base + 18.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One lane per measure, the open windows as bars over [from, to).
fn windows(r: &Report) -> String {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    let (Some(from), Some(to)) = (parse(&r.from), parse(&r.to)) else {
        return String::new();
    };
    let span = (to - from).as_seconds_f64().max(1.0);
    let (w, lane, label_w) = (640.0, 30.0, 90.0);
    let measures = ["inbound", "outbound", "transit"];
    let h = lane * measures.len() as f64 + 10.0;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, m) in measures.iter().enumerate() {
        let y = 5.0 + lane * i as f64;
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\" class=\"l\">{m}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{lw}\" height=\"20\" fill=\"#eef0f3\"/>",
            x = label_w - 8.0,
            ty = y + 15.0,
            lw = w - label_w,
        );
        for win in r.windows.iter().filter(|x| x.measure == *m) {
            let a = parse(&win.opened).unwrap_or(from);
            let b = parse(&win.closed).unwrap_or(to);
            let x = label_w + (w - label_w) * (a - from).as_seconds_f64() / span;
            let ww = ((w - label_w) * (b - a).as_seconds_f64() / span).max(2.0);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{ww:.1}\" height=\"20\" fill=\"{MEASURED}\"><title>{} – {}</title></rect>",
                esc(&win.opened),
                esc(if win.closed.is_empty() { "open" } else { &win.closed }),
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Packets of never-captured classes (domestic, non-IP, malformed,
/// undecided tunnels, too deep) that were copied out of the kernel: 0
/// unless something is badly wrong.
fn never_copied(t: &Figures) -> u64 {
    crate::classify::Class::NEVER_CAPTURED
        .iter()
        .map(|c| t.packets_redirected.get(c.name()).copied().unwrap_or(0))
        .sum()
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:720px;color:#1d2329}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:2em}
.k{display:flex;gap:1em;flex-wrap:wrap} .k div{background:#f3f5f7;padding:.6em 1em;border-radius:6px}
.k b{display:block;font-size:1.4em} table{border-collapse:collapse;width:100%}
td,th{padding:.3em .5em;border-bottom:1px solid #e3e6ea;text-align:right} td:first-child,th:first-child{text-align:left}
svg .l{font-size:12px;fill:#333} svg .v{font-size:12px;fill:#111} .ok{color:#2e8b57} .bad{color:#b3261e}
.small{color:#5b636b;font-size:.85em}";

pub fn render(r: &Report) -> String {
    let t = &r.totals;
    // Every class the kernel counts, the never-captured ones (domestic,
    // non-IP, malformed, undecided tunnels, too deep) in their own colour.
    let never: Vec<&str> = crate::classify::Class::NEVER_CAPTURED
        .iter()
        .map(|c| c.name())
        .collect();
    let classes: Vec<&str> = crate::classify::Class::ALL.iter().map(|c| c.name()).collect();
    let seen: Vec<(String, u64, &str)> = classes
        .iter()
        .map(|c| {
            let colour = if never.contains(c) { NEVER } else { MEASURED };
            (c.to_string(), t.packets_seen.get(*c).copied().unwrap_or(0), colour)
        })
        .collect();
    let copied = vec![
        ("frames copied".to_string(), t.frames_received, MEASURED),
        ("frames erased".to_string(), t.frames_erased, ERASED),
    ];
    let never_copied = never_copied(t);
    let exported: u64 = t.exported.values().sum();
    let purged: u64 = t.purged.values().sum();
    let mut rows = String::new();
    for p in &r.periods {
        let f = &p.figures;
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.start),
            num(f.packets_seen.values().sum()),
            num(f.frames_erased),
            num(f.records_selected),
            num(f.exported.values().sum()),
            num(f.purged.values().sum())
        );
    }
    let mut recipients = String::new();
    for (k, v) in &t.exported {
        let _ = write!(recipients, "<tr><td>{}</td><td>{}</td></tr>", esc(k), num(*v));
    }
    if recipients.is_empty() {
        recipients.push_str("<tr><td colspan=\"2\">nothing was exported in this period</td></tr>");
    }
    let erased_ok = t.frames_received == t.frames_erased;
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>furui transparency report {from} – {to}</title>
<style>
{STYLE}
</style></head><body>
<h1>Transparency report</h1>
<p>{from} to {to}. Aggregate figures only, recomputed from the appliance's signed audit trail ({entries} entries, {signed} signed checkpoints). No address, flow or record appears in this report.</p>
<div class="k">
<div>packets seen<b id="total-packets-seen">{seen_total}</b></div>
<div>frames copied and erased<b id="total-frames-erased">{erased}</b></div>
<div>records selected<b id="total-records-selected">{selected}</b></div>
<div>records exported<b id="total-records-exported">{exported}</b></div>
<div>records purged<b id="total-records-purged">{purged}</b></div>
</div>
<h2>Packets seen by the kernel classifier, by class</h2>
<p>Blue classes belong to a measure and may be copied while it is authorized; grey ones are never copied out of the kernel. Grey packets copied: <b id="never-copied" class="{never_class}">{never}</b>.</p>
{seen_chart}
<h2>Every copied frame was erased</h2>
<p class="{erased_class}">{erased_text}</p>
{copied_chart}
<h2>Records per period: selected, exported, purged</h2>
<p class="small"><span style="color:{MEASURED}">■</span> selected &nbsp; <span style="color:#d9822b">■</span> exported &nbsp; <span style="color:{NEVER}">■</span> purged at the end of retention</p>
{period_chart}
<table><tr><th>period from</th><th>packets seen</th><th>frames erased</th><th>selected</th><th>exported</th><th>purged</th></tr>{rows}</table>
<h2>Exported, by recipient and purpose</h2>
<table><tr><th>recipient / purpose</th><th>records</th></tr>{recipients}</table>
<h2>Authorization windows</h2>
<p class="small">Blue: the measure was authorized and the appliance running; only then can its packets be copied.</p>
{window_chart}
<p class="small">Trail's last hash at the time of the report: <code>{hash}</code></p>
</body></html>
"#,
        from = esc(&r.from),
        to = esc(&r.to),
        entries = r.trail_entries,
        signed = r.signed_checkpoints,
        seen_total = num(t.packets_seen.values().sum()),
        erased = num(t.frames_erased),
        selected = num(t.records_selected),
        exported = num(exported),
        purged = num(purged),
        never_class = if never_copied == 0 { "ok" } else { "bad" },
        never = num(never_copied),
        seen_chart = bars(&seen),
        erased_class = if erased_ok { "ok" } else { "bad" },
        erased_text = if erased_ok {
            format!(
                "All {} frames copied to user space were erased.",
                num(t.frames_received)
            )
        } else {
            format!(
                "{} frames copied, {} erased: the difference is a finding.",
                num(t.frames_received),
                num(t.frames_erased)
            )
        },
        copied_chart = bars(&copied),
        period_chart = periods(r),
        rows = rows,
        recipients = recipients,
        window_chart = windows(r),
        hash = esc(&r.trail_last_hash),
    )
}

/// One figure row of the fleet table.
fn fleet_row(name: &str, link: Option<&str>, t: &Figures) -> String {
    let cell = match link {
        Some(href) => format!("<a href=\"{}\">{}</a>", esc(href), esc(name)),
        None => format!("<b>{}</b>", esc(name)),
    };
    let erased = if t.frames_received == t.frames_erased {
        "ok"
    } else {
        "bad"
    };
    let never = never_copied(t);
    format!(
        "<tr><td>{cell}</td><td>{}</td><td class=\"{erased}\">{} / {}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        num(t.packets_seen.values().sum()),
        num(t.frames_erased),
        num(t.frames_received),
        if never == 0 { "ok" } else { "bad" },
        num(never),
        num(t.records_selected),
        num(t.exported.values().sum()),
        num(t.purged.values().sum()),
    )
}

/// The fleet's page: one row per appliance (linking to its own report,
/// written beside it in NAME/report.html) and the fleet's total.
pub fn render_fleet(f: &FleetReport) -> String {
    let t = &f.totals;
    let mut rows = String::new();
    for m in &f.appliances {
        rows.push_str(&fleet_row(
            &m.name,
            Some(&format!("{}/report.html", m.name)),
            &m.report.totals,
        ));
    }
    rows.push_str(&fleet_row("fleet", None, t));
    let selected: Vec<(String, u64, &str)> = f
        .appliances
        .iter()
        .map(|m| (m.name.clone(), m.report.totals.records_selected, MEASURED))
        .collect();
    let mut periods = String::new();
    for p in &f.periods {
        let x = &p.figures;
        let _ = write!(
            periods,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.start),
            num(x.packets_seen.values().sum()),
            num(x.frames_erased),
            num(x.records_selected),
            num(x.exported.values().sum()),
            num(x.purged.values().sum())
        );
    }
    let erased_ok = f
        .appliances
        .iter()
        .all(|m| m.report.totals.frames_received == m.report.totals.frames_erased);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>furui fleet transparency report {from} – {to}</title>
<style>
{STYLE}
</style></head><body>
<h1>Fleet transparency report</h1>
<p>{from} to {to}. {n} appliances, each one's figures recomputed from its own verified, signed audit trail, and their sum. Aggregate figures only: no address, flow or record appears in this report.</p>
<div class="k">
<div>packets seen<b id="fleet-packets-seen">{seen}</b></div>
<div>frames copied and erased<b id="fleet-frames-erased">{erased}</b></div>
<div>records selected<b id="fleet-records-selected">{selected_total}</b></div>
<div>records exported<b id="fleet-records-exported">{exported}</b></div>
</div>
<h2>Per appliance</h2>
<p class="{erased_class}">{erased_text}</p>
<table><tr><th>appliance</th><th>packets seen</th><th>frames erased / copied</th><th>never-captured classes copied</th><th>selected</th><th>exported</th><th>purged</th></tr>{rows}</table>
<h2>Records selected, by appliance</h2>
{chart}
<h2>The fleet per period</h2>
<table><tr><th>period from</th><th>packets seen</th><th>frames erased</th><th>selected</th><th>exported</th><th>purged</th></tr>{periods}</table>
</body></html>
"#,
        from = esc(&f.from),
        to = esc(&f.to),
        n = f.appliances.len(),
        seen = num(t.packets_seen.values().sum()),
        erased = num(t.frames_erased),
        selected_total = num(t.records_selected),
        exported = num(t.exported.values().sum()),
        erased_class = if erased_ok { "ok" } else { "bad" },
        erased_text = if erased_ok {
            "On every appliance, every frame copied to user space was erased.".to_string()
        } else {
            "On at least one appliance (in red below), frames copied and frames erased differ: a finding.".to_string()
        },
        chart = bars(&selected),
    )
}
