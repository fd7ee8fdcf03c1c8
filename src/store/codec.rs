//! Domain values in and out of text columns: each is stored as its contract
//! spelling and parsed back once, when a row is read, so records carry
//! `Department`, `CheckStatus`, `Plate` and so on rather than strings. A
//! column holding something this code never wrote fails the read with a
//! message naming the value.

use serde::de::DeserializeOwned;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

use super::db::Arg;
use crate::auth::Department;
use crate::cases::{CaseStatus, CheckStatus};
use crate::identity::{DeviceId, FirmId, Plate};
use crate::permit::PermitStatus;
use crate::violation::ViolationCode;

/// `$ty` is kept in a text column.
macro_rules! text_type {
    ($ty:ty $(, $g:ident)?) => {
        impl<DB: Database $(, $g)?> Type<DB> for $ty
        where
            str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as Type<DB>>::compatible(ty)
            }
        }
    };
}

/// Stores `$ty` as the text `$show` gives and reads it back with `$parse`.
macro_rules! text_column {
    ($($ty:ty: $show:expr, $parse:expr;)*) => {$(
        text_type!($ty);

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&'r str as Decode<'r, DB>>::decode(value)?;
                let parse: fn(&str) -> Result<$ty, String> = $parse;
                Ok(parse(text)?)
            }
        }

        impl From<&$ty> for Arg {
            fn from(v: &$ty) -> Arg {
                let show: fn(&$ty) -> &str = $show;
                Arg::from(show(v))
            }
        }
    )*};
}

/// A `parse` that answers `Option`, as the enums' do, with a message.
fn named<T>(
    what: &'static str,
    parse: fn(&str) -> Option<T>,
) -> impl Fn(&str) -> Result<T, String> {
    move |s| parse(s).ok_or_else(|| format!("`{s}` is not a {what}"))
}

text_column! {
    DeviceId: DeviceId::as_str, DeviceId::parse;
    Plate: Plate::as_str, Plate::parse;
    FirmId: FirmId::as_str, FirmId::parse;
    Department: |d| d.as_str(), |s| named("department", Department::parse)(s);
    CheckStatus: |c| c.as_str(), |s| named("check status", CheckStatus::parse)(s);
    CaseStatus: |c| c.as_str(), |s| named("case status", CaseStatus::parse)(s);
    ViolationCode: |c| c.as_str(), |s| named("violation code", ViolationCode::parse)(s);
    PermitStatus: |p| p.as_str(), |s| named("permit status", PermitStatus::parse)(s);
}

macro_rules! copy_into_arg {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Arg {
            fn from(v: $ty) -> Arg {
                Arg::from(&v)
            }
        }

        impl From<Option<$ty>> for Arg {
            fn from(v: Option<$ty>) -> Arg {
                v.map_or(Arg::Text(None), |v| Arg::from(&v))
            }
        }
    )*};
}

copy_into_arg!(
    Department,
    CheckStatus,
    CaseStatus,
    ViolationCode,
    PermitStatus
);

/// A JSON document in a text column (a violation's fence ids).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText<T>(pub T);

text_type!(JsonText<T>, T);

impl<'r, DB: Database, T: DeserializeOwned> Decode<'r, DB> for JsonText<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&'r str as Decode<'r, DB>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(text)?))
    }
}
