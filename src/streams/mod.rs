//! Stream processing for Lab 4: windowed aggregation with Kafka Streams'
//! semantics ([`windows`]).

pub mod aggregate;
pub mod windows;
