//! Closed value sets of Twilio's Senders API that both the CRD and the request models use.
//! Responses never parse into these: Twilio may add values, so response models keep strings.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strum::VariantNames;

// Each enum's words are written once (these notes are not doc comments, which would reach the
// CRD's descriptions). Where a case rule gives the words, serde (and schemars, which reads
// serde's attributes) and strum (`as_str`) are each told the rule. `Vertical`'s words follow no
// rule, so strum holds them (`serialize`) and serde and schemars go through it: `Serialize`
// writes `as_str`, `Deserialize` reads `FromStr` (an unknown word fails with serde's own
// "unknown variant" message) and the schema is a string with the words as its `enum`, exactly
// what schemars derives from serde's renames.

/// The business category shown on the WhatsApp profile (Twilio's `profile.vertical`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    JsonSchema,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[schemars(with = "String", extend("enum" = <Self as VariantNames>::VARIANTS))]
pub enum Vertical {
    Alcohol,
    Automotive,
    #[strum(serialize = "Beauty, Spa and Salon")]
    BeautySpaAndSalon,
    #[strum(serialize = "Clothing and Apparel")]
    ClothingAndApparel,
    Education,
    Entertainment,
    #[strum(serialize = "Event Planning and Service")]
    EventPlanningAndService,
    #[strum(serialize = "Finance and Banking")]
    FinanceAndBanking,
    #[strum(serialize = "Food and Grocery")]
    FoodAndGrocery,
    #[strum(serialize = "Hotel and Lodging")]
    HotelAndLodging,
    #[strum(serialize = "Matrimony Service")]
    MatrimonyService,
    #[strum(serialize = "Medical and Health")]
    MedicalAndHealth,
    #[strum(serialize = "Non-profit")]
    NonProfit,
    #[strum(serialize = "Online Gambling")]
    OnlineGambling,
    #[strum(serialize = "OTC Drugs")]
    OtcDrugs,
    Other,
    #[strum(serialize = "Physical Gambling")]
    PhysicalGambling,
    #[strum(serialize = "Professional Services")]
    ProfessionalServices,
    #[strum(serialize = "Public Service")]
    PublicService,
    Restaurant,
    #[strum(serialize = "Shopping and Retail")]
    ShoppingAndRetail,
    #[strum(serialize = "Travel and Transportation")]
    TravelAndTransportation,
}

impl Vertical {
    /// Twilio's spelling, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Serialize for Vertical {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Vertical {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        word.parse()
            .map_err(|_| D::Error::unknown_variant(&word, Self::VARIANTS))
    }
}

/// HTTP method Twilio uses to call a webhook.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum WebhookMethod {
    Post,
    Put,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How Meta delivers the one-time code for a number Twilio cannot verify itself.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum VerificationMethod {
    /// A text message to the number.
    #[default]
    Sms,
    /// A voice call to the number.
    Voice,
}

impl VerificationMethod {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

// `AccountType`'s words stay in serde's renames, with `as_str` by hand: its documented variants
// make schemars derive a `oneOf`, which the CRD renders with the type's description and without
// `null` in the optional field's `enum`; going through strum as `Vertical` does would change
// both.

/// Twilio's `configuration.account_type`, for ISV account-type migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AccountType {
    /// The ISV's own account.
    #[serde(rename = "ISV")]
    Isv,
    /// A subaccount an ISV runs for one of its customers.
    #[serde(rename = "ISVSubAccount")]
    IsvSubAccount,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Isv => "ISV",
            Self::IsvSubAccount => "ISVSubAccount",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertical_wire_names_match_as_str() {
        let all: Vec<Vertical> = serde_json::from_value(serde_json::json!([
            "Alcohol",
            "Automotive",
            "Beauty, Spa and Salon",
            "Clothing and Apparel",
            "Education",
            "Entertainment",
            "Event Planning and Service",
            "Finance and Banking",
            "Food and Grocery",
            "Hotel and Lodging",
            "Matrimony Service",
            "Medical and Health",
            "Non-profit",
            "Online Gambling",
            "OTC Drugs",
            "Other",
            "Physical Gambling",
            "Professional Services",
            "Public Service",
            "Restaurant",
            "Shopping and Retail",
            "Travel and Transportation"
        ]))
        .expect("every vertical in Twilio's list parses");
        assert_eq!(all.len(), 22);
        for v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }

    #[test]
    fn an_unknown_vertical_fails_as_a_derived_enum_would() {
        let err = serde_json::from_str::<Vertical>(r#""Pets""#).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown variant `Pets`, expected one of `Alcohol`, `Automotive`, \
                 `Beauty, Spa and Salon`,"
            ),
            "{err}"
        );
        assert!(serde_json::from_str::<Vertical>("7").is_err());
    }

    #[test]
    fn the_other_sets_write_as_str() {
        for m in [WebhookMethod::Post, WebhookMethod::Put] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for m in [VerificationMethod::Sms, VerificationMethod::Voice] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for t in [AccountType::Isv, AccountType::IsvSubAccount] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            [
                WebhookMethod::Post.as_str(),
                VerificationMethod::Voice.as_str()
            ],
            ["POST", "voice"]
        );
    }
}
