//! Closed value sets of Twilio's Senders API that both the CRD and the request models use.
//! Responses never parse into these: Twilio may add values, so response models keep strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The business category shown on the WhatsApp profile (Twilio's `profile.vertical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Vertical {
    Alcohol,
    Automotive,
    #[serde(rename = "Beauty, Spa and Salon")]
    BeautySpaAndSalon,
    #[serde(rename = "Clothing and Apparel")]
    ClothingAndApparel,
    Education,
    Entertainment,
    #[serde(rename = "Event Planning and Service")]
    EventPlanningAndService,
    #[serde(rename = "Finance and Banking")]
    FinanceAndBanking,
    #[serde(rename = "Food and Grocery")]
    FoodAndGrocery,
    #[serde(rename = "Hotel and Lodging")]
    HotelAndLodging,
    #[serde(rename = "Matrimony Service")]
    MatrimonyService,
    #[serde(rename = "Medical and Health")]
    MedicalAndHealth,
    #[serde(rename = "Non-profit")]
    NonProfit,
    #[serde(rename = "Online Gambling")]
    OnlineGambling,
    #[serde(rename = "OTC Drugs")]
    OtcDrugs,
    Other,
    #[serde(rename = "Physical Gambling")]
    PhysicalGambling,
    #[serde(rename = "Professional Services")]
    ProfessionalServices,
    #[serde(rename = "Public Service")]
    PublicService,
    Restaurant,
    #[serde(rename = "Shopping and Retail")]
    ShoppingAndRetail,
    #[serde(rename = "Travel and Transportation")]
    TravelAndTransportation,
}

impl Vertical {
    /// Twilio's spelling, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alcohol => "Alcohol",
            Self::Automotive => "Automotive",
            Self::BeautySpaAndSalon => "Beauty, Spa and Salon",
            Self::ClothingAndApparel => "Clothing and Apparel",
            Self::Education => "Education",
            Self::Entertainment => "Entertainment",
            Self::EventPlanningAndService => "Event Planning and Service",
            Self::FinanceAndBanking => "Finance and Banking",
            Self::FoodAndGrocery => "Food and Grocery",
            Self::HotelAndLodging => "Hotel and Lodging",
            Self::MatrimonyService => "Matrimony Service",
            Self::MedicalAndHealth => "Medical and Health",
            Self::NonProfit => "Non-profit",
            Self::OnlineGambling => "Online Gambling",
            Self::OtcDrugs => "OTC Drugs",
            Self::Other => "Other",
            Self::PhysicalGambling => "Physical Gambling",
            Self::ProfessionalServices => "Professional Services",
            Self::PublicService => "Public Service",
            Self::Restaurant => "Restaurant",
            Self::ShoppingAndRetail => "Shopping and Retail",
            Self::TravelAndTransportation => "Travel and Transportation",
        }
    }
}

/// HTTP method Twilio uses to call a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WebhookMethod {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }
}

/// How Meta delivers the one-time code for a number Twilio cannot verify itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationMethod {
    /// A text message to the number.
    #[default]
    Sms,
    /// A voice call to the number.
    Voice,
}

impl VerificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }
}

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
}
