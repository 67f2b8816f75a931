//! The top level of a config file: which section is which, each read into
//! its TOML shape with every reading error reported. Validation happens
//! afterwards, section by section, in `mod.rs`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::appliance::ApplianceSection;
use super::approvals::ApprovalsSection;
use super::audit::AuditSection;
use super::capture::CaptureSection;
use super::control::{ControlSection, MetricsSection};
use super::decap::DecapSection;
use super::domestic::DomesticSection;
use super::errors::Collector;
use super::export::ExportSections;
use super::flows::FlowsSection;
use super::measures::{self, MeasureSection};
use super::read::{array_of, de, de_optional, de_or_default};
use super::records::RecordsSection;
use super::retention::RetentionSection;
use super::selection::{IndicatorSection, SelectionSection};
use crate::classify::Measure;

const SECTIONS: &str =
    "appliance, approvals, capture, decap, domestic, measures, indicators, selection, flows, records, metrics, control, deid, export, api, aggregates, audit, retention, purposes, consents, recipients";

/// Every section as written. `ok` is false when one could not be read, so
/// that no `Config` is built from a default standing in for it.
#[derive(Default)]
pub(super) struct Sections {
    pub appliance: ApplianceSection,
    pub approvals: Option<ApprovalsSection>,
    pub capture: Option<CaptureSection>,
    pub decap: Option<DecapSection>,
    pub domestic: Option<DomesticSection>,
    /// Where `[domestic]` starts, for errors about the set as a whole.
    pub domestic_span: Option<Range<usize>>,
    pub measures: Vec<(Measure, Spanned<MeasureSection>)>,
    pub indicators: Vec<IndicatorSection>,
    pub selection: SelectionSection,
    pub flows: FlowsSection,
    pub records: Option<RecordsSection>,
    pub metrics: MetricsSection,
    pub control: ControlSection,
    pub audit: Option<AuditSection>,
    pub retention: Option<RetentionSection>,
    pub export: ExportSections,
    pub ok: bool,
}

impl Sections {
    pub fn read(root: &DeTable<'_>, c: &mut Collector<'_>) -> Sections {
        let mut s = Sections {
            ok: true,
            ..Sections::default()
        };
        for (key, value) in root.iter() {
            s.read_one(key, value, c);
        }
        let present = |name: &str| root.keys().any(|k| k.get_ref() == name);
        if s.capture.is_none() && !present("capture") {
            c.at_line(1, "missing section [capture] (at least `interface = \"...\"`)");
        }
        if s.records.is_none() && !present("records") {
            c.at_line(1, "missing section [records] (at least `path = \"...\"`)");
        }
        s
    }

    fn read_one(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        c: &mut Collector<'_>,
    ) {
        let ok = &mut self.ok;
        let x = &mut self.export;
        match key.get_ref().as_ref() {
            "appliance" => self.appliance = de_or_default(value, ok, c),
            "approvals" => self.approvals = de_optional(value, ok, c),
            "capture" => self.capture = de(value, c),
            "decap" => self.decap = de_optional(value, ok, c),
            "domestic" => {
                self.domestic_span = Some(key.span());
                self.domestic = de(value, c);
            }
            "measures" => *ok &= measures::read(value, &mut self.measures, c),
            "indicators" => *ok &= array_of(key.get_ref(), value, &mut self.indicators, c),
            "selection" => self.selection = de_or_default(value, ok, c),
            "flows" => self.flows = de_or_default(value, ok, c),
            "records" => self.records = de(value, c),
            "metrics" => self.metrics = de_or_default(value, ok, c),
            "control" => self.control = de_or_default(value, ok, c),
            "audit" => self.audit = de_optional(value, ok, c),
            "retention" => self.retention = de_optional(value, ok, c),
            "deid" => x.deid = de_or_default(value, ok, c),
            "export" => x.export = de_or_default(value, ok, c),
            "api" => x.api = de_optional(value, ok, c),
            "aggregates" => x.aggregates = de_or_default(value, ok, c),
            "purposes" => *ok &= array_of(key.get_ref(), value, &mut x.purposes, c),
            "consents" => *ok &= array_of(key.get_ref(), value, &mut x.consents, c),
            "recipients" => *ok &= array_of(key.get_ref(), value, &mut x.recipients, c),
            other => c.at(
                key.span(),
                format!("unknown section `{other}`; expected one of: {SECTIONS}"),
            ),
        }
    }
}
