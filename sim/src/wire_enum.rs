//! Closed sets of wire words (`ONLINE`, `auto_verify`, …). Each is an enum with its words written
//! once, as `#[strum(serialize = "…")]`, and strum's derives: `EnumString` (`FromStr`),
//! `IntoStaticStr`, `Display` and `VariantArray` (every variant); `Serialize` writes the word
//! (`#[serde(into = "&'static str")]`). `FromStr`'s error names the set and lists its words:
//! `#[strum(parse_err_ty = String, parse_err_fn = unknown_word::<Self>)]` and a [`WireEnum`]
//! impl saying what a word of the set is called.

use strum::VariantArray;

/// A set of wire words, as named in the error for a word not in it.
pub trait WireEnum: VariantArray + Copy + Into<&'static str> {
    /// What a word of the set is, as in "unknown status".
    const WHAT: &'static str;
}

/// `FromStr`'s error for a word not in the set: `unknown status "online"; expected one of …`.
pub fn unknown_word<E: WireEnum>(word: &str) -> String {
    let all: Vec<&str> = E::VARIANTS.iter().map(|&v| v.into()).collect();
    format!(
        "unknown {} {word:?}; expected one of {}",
        E::WHAT,
        all.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use crate::alerts::LogLevel;
    use crate::model::Status;

    #[test]
    fn an_unknown_word_is_named_with_every_word_of_the_set() {
        assert_eq!(
            "Error".parse::<LogLevel>().unwrap_err(),
            r#"unknown log level "Error"; expected one of error, warning, notice, debug"#
        );
        assert_eq!(
            "online".parse::<Status>().unwrap_err(),
            "unknown status \"online\"; expected one of CREATING, ONLINE, OFFLINE, \
             PENDING_VERIFICATION, VERIFYING, ONLINE:UPDATING, TWILIO_REVIEW, DRAFT, STUBBED"
        );
    }
}
