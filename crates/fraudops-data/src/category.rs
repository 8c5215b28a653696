//! Merchant categories: the closed vocabulary the simulator assigns to terminals and the API accepts.

use std::fmt;
use std::str::FromStr;

/// A terminal's merchant category (an extension of the handbook's data, SPEC §3.1).
///
/// A closed enum rather than a free string so the model sees a stable numeric code and the API can reject
/// unknown values with a clear message instead of silently scoring them as something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MerchantCategory {
    Grocery = 0,
    Restaurant = 1,
    GasStation = 2,
    OnlineRetail = 3,
    Electronics = 4,
    Travel = 5,
    Entertainment = 6,
    Health = 7,
    Clothing = 8,
    Utilities = 9,
}

impl MerchantCategory {
    /// Every category, in code order; the simulator draws uniformly from it.
    pub const ALL: [MerchantCategory; 10] = [
        Self::Grocery,
        Self::Restaurant,
        Self::GasStation,
        Self::OnlineRetail,
        Self::Electronics,
        Self::Travel,
        Self::Entertainment,
        Self::Health,
        Self::Clothing,
        Self::Utilities,
    ];

    /// The wire and CSV spelling (snake_case).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grocery => "grocery",
            Self::Restaurant => "restaurant",
            Self::GasStation => "gas_station",
            Self::OnlineRetail => "online_retail",
            Self::Electronics => "electronics",
            Self::Travel => "travel",
            Self::Entertainment => "entertainment",
            Self::Health => "health",
            Self::Clothing => "clothing",
            Self::Utilities => "utilities",
        }
    }

    /// The numeric code the model sees as a feature value.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The category for a code, if the code is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for MerchantCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a merchant category; names the accepted values so a 4xx body is actionable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown merchant category {0:?}; expected one of: grocery, restaurant, gas_station, online_retail, electronics, travel, entertainment, health, clothing, utilities"
)]
pub struct UnknownCategory(pub String);

impl FromStr for MerchantCategory {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips_through_its_name_and_code() {
        for c in MerchantCategory::ALL {
            assert_eq!(c.as_str().parse::<MerchantCategory>(), Ok(c));
            assert_eq!(c.as_str().to_uppercase().parse::<MerchantCategory>(), Ok(c));
            assert_eq!(MerchantCategory::from_code(c.code()), Some(c));
        }
        assert_eq!(MerchantCategory::from_code(10), None);
    }

    #[test]
    fn unknown_category_error_lists_the_choices() {
        let err = "casino".parse::<MerchantCategory>().unwrap_err();
        assert!(err.to_string().contains("casino"));
        assert!(err.to_string().contains("gas_station"));
    }
}
