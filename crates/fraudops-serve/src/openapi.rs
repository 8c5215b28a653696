//! The OpenAPI 3 document served at `/openapi.json` (and browsed at `/docs`).
//!
//! Why a module of its own: the document lists the handlers' paths ([`crate::routes`]) and the wire
//! types' schemas (`fraudops_wire`); here it depends on both and neither depends on it, so the routes and
//! the types do not import each other in a circle. utoipa derives it from the code, so it cannot drift.

use fraudops_wire::{
    BatchRequest, BatchResponse, CustomerHistory, ErrorBody, FeatureSource, HealthStatus, History,
    PredictRequest, PredictResponse, ServiceInfo, TerminalHistory, TransactionId,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        FeatureSource,
        BatchRequest,
        BatchResponse,
        ErrorBody,
        HealthStatus,
        ServiceInfo
    )),
    modifiers(&ApiKeyScheme)
)]
pub struct ApiDoc;

/// The scoring routes' `api_key` scheme: a bearer key, required when the server has API_KEYS_FILE (the
/// routes list it beside "no security", which a server without keys accepts).
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A key from `fraudops api-key new`, required when the server has API_KEYS_FILE; scopes: score, record (direct calls are recorded in the feature store), history (may send history).",
                    ))
                    .build(),
            ),
        );
    }
}
