//! Address and port conditions as Suricata writes them: lists, ranges,
//! negation and nesting (`[10.0.0.0/8,!10.1.0.0/16]`, `![80,443]`), plus
//! the two sides of the border (`$HOME_NET` is the domestic set,
//! `$EXTERNAL_NET` its complement). The TOML rules use the same types with
//! a single positive leaf.

use std::net::IpAddr;

use crate::classify::PrefixSet;

/// A condition over one value: a leaf, its negation, or a list.
#[derive(Debug, Clone)]
pub enum Expr<L> {
    Leaf(L),
    Not(Box<Expr<L>>),
    /// Holds when one positive element holds (or there is none) and no
    /// negated element holds — Suricata's list rule.
    List(Vec<Expr<L>>),
}

impl<L> Expr<L> {
    /// Evaluates the expression with `leaf` deciding each leaf.
    pub fn eval(&self, leaf: &impl Fn(&L) -> bool) -> bool {
        match self {
            Expr::Leaf(l) => leaf(l),
            Expr::Not(e) => !e.eval(leaf),
            Expr::List(items) => {
                let mut positives = false;
                let mut positive_hit = false;
                for e in items {
                    match e {
                        Expr::Not(inner) => {
                            if inner.eval(leaf) {
                                return false;
                            }
                        }
                        e => {
                            positives = true;
                            positive_hit = positive_hit || e.eval(leaf);
                        }
                    }
                }
                !positives || positive_hit
            }
        }
    }
}

/// An address leaf.
#[derive(Debug, Clone)]
pub enum Addr {
    Set(PrefixSet),
    /// `$HOME_NET`: the domestic set.
    Home,
    /// `$EXTERNAL_NET`: every address outside the domestic set.
    External,
}

/// An inclusive port range.
pub type Ports = (u16, u16);

pub type AddrExpr = Expr<Addr>;
pub type PortExpr = Expr<Ports>;

/// Whether `a` meets the address condition; `domestic` says which side of
/// the border `a` is on (the packet's class tells it).
pub fn addr_matches(e: &AddrExpr, a: IpAddr, domestic: bool) -> bool {
    e.eval(&|l: &Addr| match l {
        Addr::Set(s) => s.contains(a),
        Addr::Home => domestic,
        Addr::External => !domestic,
    })
}

pub fn port_matches(e: &PortExpr, p: u16) -> bool {
    e.eval(&|(lo, hi): &Ports| *lo <= p && p <= *hi)
}

/// The positive ranges of a flat list (the TOML rules' form).
pub fn port_list(ranges: Vec<Ports>) -> PortExpr {
    Expr::List(ranges.into_iter().map(Expr::Leaf).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> AddrExpr {
        Expr::Leaf(Addr::Set(nets.iter().map(|n| n.parse().unwrap()).collect()))
    }

    #[test]
    fn lists_take_any_positive_and_no_negated_element() {
        let e = Expr::List(vec![set(&["10.0.0.0/8"]), Expr::Not(Box::new(set(&["10.1.0.0/16"])))]);
        let ip = |s: &str| s.parse().unwrap();
        assert!(addr_matches(&e, ip("10.2.3.4"), false));
        assert!(!addr_matches(&e, ip("10.1.3.4"), false));
        assert!(!addr_matches(&e, ip("11.0.0.1"), false));
        // Only negated elements: everything else matches.
        let only_not = Expr::List(vec![Expr::Not(Box::new(set(&["10.0.0.0/8"])))]);
        assert!(addr_matches(&only_not, ip("192.0.2.1"), false));
        assert!(!addr_matches(&only_not, ip("10.9.9.9"), false));
        // The sides of the border.
        let home = Expr::Leaf(Addr::Home);
        assert!(addr_matches(&home, ip("192.0.2.1"), true));
        assert!(!addr_matches(&home, ip("192.0.2.1"), false));
        let not_home = Expr::Not(Box::new(Expr::Leaf(Addr::Home)));
        assert!(addr_matches(&not_home, ip("192.0.2.1"), false));
    }

    #[test]
    fn port_lists_and_negated_groups() {
        // ![80,443]
        let e: PortExpr = Expr::Not(Box::new(port_list(vec![(80, 80), (443, 443)])));
        assert!(!port_matches(&e, 80));
        assert!(port_matches(&e, 8080));
        // [1024:,!8080]
        let e = Expr::List(vec![
            Expr::Leaf((1024, u16::MAX)),
            Expr::Not(Box::new(Expr::Leaf((8080, 8080)))),
        ]);
        assert!(port_matches(&e, 5000));
        assert!(!port_matches(&e, 8080));
        assert!(!port_matches(&e, 80));
    }
}
