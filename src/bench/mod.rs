//! Measurements for Lab 3 (`chinook bench …`): what serialization costs in
//! bytes and time ([`serialization`]), and what the producer's compression,
//! linger and batch settings cost against the broker ([`produce`]). Figures
//! are measured on the machine that runs them, never assumed.

pub mod produce;
pub mod serialization;
