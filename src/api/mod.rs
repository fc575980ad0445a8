//! The `WhatsAppSender` custom resource.
