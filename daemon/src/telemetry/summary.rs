//! A person-readable summary of the counters (for `furui stats` and the demo).

use std::fmt::Write;

use super::names;
use crate::classify::walk::{Encap, Outcome};
use crate::classify::{Action, Class, Measure};

fn get(m: &[(String, f64)], key: &str) -> u64 {
    m.iter().filter(|(k, _)| k == key).map(|(_, v)| *v as u64).sum()
}

fn sum_prefix(m: &[(String, f64)], prefix: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| *v as u64)
        .sum()
}

pub fn render(m: &[(String, f64)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "XDP classifier (packets by class and action):");
    let _ = writeln!(
        s,
        "  {:<10} {:>10} {:>10} {:>10} {:>10}",
        "class", "redirect", "drop", "pass", "no_socket"
    );
    for c in Class::ALL {
        let v: Vec<u64> = Action::ALL
            .iter()
            .map(|a| {
                get(
                    m,
                    &format!(
                        "{}{{action=\"{}\",class=\"{}\"}}",
                        names::XDP_PACKETS,
                        a.name(),
                        c.name()
                    ),
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<10} {:>10} {:>10} {:>10} {:>10}",
            c.name(),
            v[0],
            v[1],
            v[2],
            v[3]
        );
    }
    // Encapsulations the walk met (rows with no packets left out).
    let rows: Vec<(Encap, Vec<u64>)> = Encap::ALL
        .iter()
        .map(|e| {
            let v = Outcome::ALL
                .iter()
                .map(|o| {
                    get(
                        m,
                        &format!(
                            "{}{{encap=\"{}\",outcome=\"{}\"}}",
                            names::XDP_ENCAP_PACKETS,
                            e.name(),
                            o.name()
                        ),
                    )
                })
                .collect();
            (*e, v)
        })
        .filter(|(_, v): &(Encap, Vec<u64>)| v.iter().any(|n| *n > 0))
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(
            s,
            "Encapsulations (packets per layer; the class is the inner header's):"
        );
        let _ = write!(s, "  {:<10}", "encap");
        for o in Outcome::ALL {
            let _ = write!(s, " {:>10}", o.name());
        }
        let _ = writeln!(s);
        for (e, v) in rows {
            let _ = write!(s, "  {:<10}", e.name());
            for n in v {
                let _ = write!(s, " {n:>10}");
            }
            let _ = writeln!(s);
        }
    }
    let _ = writeln!(s, "Measures authorized now:");
    for me in Measure::ALL {
        let on = get(
            m,
            &format!("{}{{measure=\"{}\"}}", names::MEASURE_AUTHORIZED, me.name()),
        );
        let _ = writeln!(s, "  {:<10} {}", me.name(), if on == 1 { "yes" } else { "no" });
    }
    let rx = sum_prefix(m, names::FRAMES_RECEIVED);
    let er = sum_prefix(m, names::FRAMES_ERASED);
    let _ = writeln!(s, "Frames received by user space: {rx}");
    let _ = writeln!(
        s,
        "Frames erased (zeroed):        {er}   {}",
        if rx == er {
            "(= received)"
        } else {
            "(NOT equal to received!)"
        }
    );
    let _ = writeln!(
        s,
        "Bytes erased:                  {}",
        sum_prefix(m, names::BYTES_ERASED)
    );
    let _ = writeln!(
        s,
        "Parse errors (erased too):     {}",
        sum_prefix(m, names::PARSE_ERRORS)
    );
    let _ = writeln!(s, "Records selected:              {}", get(m, names::RECORDS_SELECTED));
    let _ = writeln!(s, "Records written:               {}", get(m, names::RECORDS_WRITTEN));
    let _ = writeln!(
        s,
        "Records dropped:               {}",
        sum_prefix(m, names::RECORDS_DROPPED)
    );
    let _ = writeln!(
        s,
        "Kernel AF_XDP loss (ring full / dropped): {} / {}",
        sum_prefix(m, names::XSK_RX_RING_FULL),
        sum_prefix(m, names::XSK_RX_DROPPED)
    );
    s
}
