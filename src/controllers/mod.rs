//! The controllers, one folder per kind. A kind's folder holds only what is about that kind;
//! what every controller needs is in [`crate::runtime`].

pub mod whatsapp_sender;
