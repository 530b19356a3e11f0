//! Detection rules. `sigma` holds the Sigma v2.1 engine: parsing, compilation and evaluation of
//! detection rules against JSON events. Pure: rule texts come in as strings, events as values.

pub mod sigma;

pub use sigma::{
    CompiledRule, DefaultFieldSource, FieldSource, Rejection, RuleSet, SigmaRule, compile_rule,
    load_rules, parse_rules,
};

#[cfg(test)]
mod tests;
