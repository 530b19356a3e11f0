//! Detection rules. `sigma` holds the Sigma v2.1 engine: parsing, compilation and evaluation of
//! detection rules against JSON events; `detect` applies compiled rules to Vigie events and
//! turns matches into alert signals. Pure: rule texts come in as strings, events as values.

pub mod correlation;
pub mod detect;
pub mod logsource;
pub mod sigma;
pub mod test;

pub use sigma::{
    CompiledRule, DefaultFieldSource, FieldSource, Rejection, RuleSet, SigmaRule, compile_rule,
    load_rules, parse_rules,
};

#[cfg(test)]
mod tests;
