//! Measurements for Lab 3 (`chinook bench …`): what serialization costs in
//! bytes and time ([`serialization`]). Figures are measured on the machine
//! that runs them, never assumed.

pub mod serialization;
