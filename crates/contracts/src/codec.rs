//! The protobuf codec of every generated client and server: prost's, except
//! for what a request that cannot be decoded answers.
//!
//! `tonic_prost::ProstCodec` turns any decode failure into INTERNAL. A request
//! whose bytes are not a valid message (a string field that is not UTF-8, a
//! truncated field, a wrong wire type) is the caller's mistake, so a server
//! answers INVALID_ARGUMENT instead, with the same `ErrorInfo` and
//! `BadRequest` details as any other bad field. The field path is the one
//! prost reports (`signals.external_id`: repeated fields carry no index).
//! A response that cannot be decoded is still INTERNAL: the fault is not the
//! caller's.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

use crate::error::{ApiError, FieldViolation};

/// Drop-in for `tonic_prost::ProstCodec` (see the module docs).
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder { _type: PhantomData }
    }
}

/// Decodes one `U`; see [`decode_error`] for what a failure answers.
#[derive(Debug, Clone)]
pub struct MessageDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|err| decode_error(std::any::type_name::<U>(), &err))
    }
}

/// The status for a message of type `type_name` (a Rust path such as
/// `contracts::pb::health::v1::RecordSignalsRequest`) that failed to decode.
pub fn decode_error(type_name: &str, err: &prost::DecodeError) -> Status {
    let message = type_name.rsplit("::").next().unwrap_or(type_name);
    if !message.ends_with("Request") {
        return Status::internal(err.to_string());
    }
    let (path, problem) = split_decode_error(&err.to_string());
    let description = format!("is not a valid {message}: {problem}");
    let api = if path.is_empty() {
        ApiError::Malformed {
            message: format!("the request body {description}"),
        }
    } else {
        ApiError::InvalidArgument {
            violations: vec![FieldViolation::new(path, description)],
        }
    };
    api.into_status(&domain_of(type_name))
}

/// Splits prost's `failed to decode Protobuf message: Inner.field: Outer.field: problem`
/// into the field path as the caller wrote it (`field.field`, outermost
/// first) and the problem.
fn split_decode_error(text: &str) -> (String, String) {
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut fields = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let Some((message, field)) = head.split_once('.') else {
            break;
        };
        let is_ident = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#')
        };
        if !is_ident(message) || !is_ident(field) {
            break;
        }
        fields.push(field.trim_start_matches("r#"));
        rest = tail;
    }
    fields.reverse();
    (fields.join("."), rest.to_owned())
}

/// The error domain of a generated type: `contracts::pb::health::v1::X` is
/// `expansion.health.v1`.
fn domain_of(type_name: &str) -> String {
    let mut parts = type_name.split("::").skip_while(|p| *p != "pb").skip(1);
    match (parts.next(), parts.next()) {
        (Some(package), Some(version)) => format!("expansion.{package}.{version}"),
        _ => "expansion".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pb::health::v1 as health;
    use tonic::Code;
    use tonic_types::StatusExt;

    /// `RecordSignalsRequest { signals: [Signal { external_id: <bytes> }] }`
    /// written by hand, so the string can hold bytes that are not UTF-8.
    fn signals_with_external_id(bytes: &[u8]) -> Vec<u8> {
        let mut signal = vec![0x42, u8::try_from(bytes.len()).unwrap()]; // field 8, LEN
        signal.extend_from_slice(bytes);
        let mut request = vec![0x12, u8::try_from(signal.len()).unwrap()]; // field 2, LEN
        request.extend_from_slice(&signal);
        request
    }

    fn decode<U: Message + Default + std::fmt::Debug>(bytes: &[u8]) -> Status {
        let err = U::decode(bytes).unwrap_err();
        decode_error(std::any::type_name::<U>(), &err)
    }

    #[test]
    fn invalid_utf8_in_a_request_is_invalid_argument_on_the_field() {
        let ok =
            health::RecordSignalsRequest::decode(signals_with_external_id(b"usage-1").as_slice())
                .unwrap();
        assert_eq!(ok.signals[0].external_id, "usage-1");

        let status = decode::<health::RecordSignalsRequest>(&signals_with_external_id(&[
            0x66, 0x6f, 0xff, 0xfe,
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "signals.external_id");
        assert!(
            violations[0].description.contains("UTF-8"),
            "{violations:?}"
        );
        let info = details.error_info().unwrap();
        assert_eq!(info.domain, "expansion.health.v1");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn garbage_without_a_field_is_a_malformed_request() {
        let status = decode::<health::GetAccountRequest>(&[0xff, 0xff, 0xff]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert!(details.bad_request().is_none());
        assert_eq!(details.error_info().unwrap().reason, "MALFORMED_REQUEST");
    }

    #[test]
    fn an_unreadable_response_stays_internal() {
        let status = decode::<health::GetAccountResponse>(&[0xff, 0xff, 0xff]);
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn field_paths_read_outermost_first() {
        assert_eq!(
            split_decode_error(
                "failed to decode Protobuf message: Signal.external_id: \
                 RecordSignalsRequest.signals: invalid string value: data is not UTF-8 encoded"
            ),
            (
                "signals.external_id".to_owned(),
                "invalid string value: data is not UTF-8 encoded".to_owned()
            )
        );
        assert_eq!(
            split_decode_error("failed to decode Protobuf message: invalid varint"),
            (String::new(), "invalid varint".to_owned())
        );
        assert_eq!(
            domain_of("contracts::pb::credit::v1::GetStatementRequest"),
            "expansion.credit.v1"
        );
        assert_eq!(domain_of("Other"), "expansion");
    }
}
