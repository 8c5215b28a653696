//! The OpenAPI 3 document served at `/openapi.json` (and browsed at `/docs`).
//!
//! Why a module of its own: the document lists the handlers' paths ([`crate::routes`]) and the wire
//! types' schemas (`fraudops_wire`); here it depends on both and neither depends on it, so the routes and
//! the types do not import each other in a circle. utoipa derives it from the code, so it cannot drift.

use fraudops_wire::{
    BatchRequest, BatchResponse, CustomerHistory, ErrorBody, HealthStatus, History, PredictRequest,
    PredictResponse, ServiceInfo, TerminalHistory, TransactionId,
};
use utoipa::OpenApi;

/// The OpenAPI document served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fraudops scoring API",
        description = "Credit-card fraud scoring (SPEC §4)."
    ),
    paths(
        crate::routes::predict,
        crate::routes::predict_batch,
        crate::routes::health,
        crate::routes::ready,
        crate::routes::metrics,
        crate::routes::service_info,
    ),
    components(schemas(
        TransactionId,
        CustomerHistory,
        TerminalHistory,
        History,
        PredictRequest,
        PredictResponse,
        BatchRequest,
        BatchResponse,
        ErrorBody,
        HealthStatus,
        ServiceInfo
    ))
)]
pub struct ApiDoc;
