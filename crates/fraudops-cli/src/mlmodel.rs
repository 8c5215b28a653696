//! What a registered version says about itself to MLflow: the `MLmodel` file at the root of its
//! logged model's artifacts, beside `model.json` and `metrics.json`.
//!
//! Why: MLflow's UI and clients (`mlflow.models.get_model_info("models:/fraud-detector@champion")`)
//! know a model only by this file. It names the `fraudops` flavor (which file is the artifact, its
//! format version, the build that wrote it and what loads it) and the signature: the 20 features in
//! the model's input order and the fraud probability it returns. `serve` does not read it; it loads
//! `model.json`, which carries the same feature list and refuses a mismatch itself.
//!
//! A second flavor, `python_function`, lets `mlflow.pyfunc.load_model("models:/fraud-detector@champion")`
//! score in Python: its loader module ([`PYFUNC_MODULE_SOURCE`], uploaded as [`PYFUNC_MODULE_PATH`]) reads
//! the same `model.json` with numpy and pandas only, so a notebook needs no fraudops binary.

use fraudops_mlflow::{ColSpec, ColumnType, LoggedModel, MlModel, Signature};
use fraudops_model::ModelArtifact;
use serde_json::{Map, Value, json};

use crate::registry::MODEL_FILE;

/// The flavor name in `MLmodel`.
pub const FLAVOR: &str = "fraudops";
/// The test-window metrics beside the artifact.
pub const METRICS_FILE: &str = "metrics.json";
/// The signature's one output column.
pub const OUTPUT: &str = "fraud_probability";
/// What loads the flavor.
const LOADER: &str = "fraudops serve";
/// MLflow's generic Python flavor.
pub const PYFUNC_FLAVOR: &str = "python_function";
/// The folder of the logged model that MLflow puts on `sys.path` before importing the loader.
const PYFUNC_CODE_DIR: &str = "code";
/// The loader module's name, and where it is uploaded in the logged model.
const PYFUNC_MODULE: &str = "fraudops_pyfunc";
/// See [`PYFUNC_MODULE`].
pub const PYFUNC_MODULE_PATH: &str = "code/fraudops_pyfunc.py";
/// The loader: `_load_pyfunc(model.json)` returning an object whose `predict(frame)` gives the fraud
/// probabilities, as `serve` computes them.
pub const PYFUNC_MODULE_SOURCE: &str = include_str!("pyfunc/fraudops_pyfunc.py");

/// The `MLmodel` description of `artifact`, uploaded as the logged model `model`.
pub fn describe(artifact: &ModelArtifact, model: &LoggedModel) -> MlModel {
    MlModel::new(
        &model.model_id,
        &model.artifact_uri,
        model.source_run_id.as_deref(),
    )
    .with_flavor(FLAVOR, flavor(artifact))
    .with_flavor(PYFUNC_FLAVOR, pyfunc_flavor())
    .with_signature(signature(artifact))
}

/// The `python_function` flavor: MLflow imports `loader_module` from `code/` and calls its
/// `_load_pyfunc` with the path of `data`.
fn pyfunc_flavor() -> Map<String, Value> {
    flavor_config([
        ("loader_module", json!(PYFUNC_MODULE)),
        ("code", json!(PYFUNC_CODE_DIR)),
        ("data", json!(MODEL_FILE)),
    ])
}

/// The `fraudops` flavor: enough for a reader to know which file to load and which builds can.
fn flavor(artifact: &ModelArtifact) -> Map<String, Value> {
    flavor_config([
        ("artifact", json!(MODEL_FILE)),
        ("format_version", json!(artifact.format_version)),
        ("fraudops_version", json!(env!("CARGO_PKG_VERSION"))),
        ("loader", json!(LOADER)),
        ("metrics", json!(METRICS_FILE)),
        ("model_version", json!(artifact.model_version)),
    ])
}

/// A flavor's configuration (its keys in `MLmodel`) from key-value pairs.
fn flavor_config<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// Inputs: the artifact's features in its input order, every one a required `double`. The model
/// reads a vector of `f64` (`fraudops_features::FeatureVector`) and a missing value is NaN (an
/// unknown weekend or night flag, merchant category, age or balance), which MLflow's integer types
/// cannot hold; the counts are whole numbers but reach the model as `f64` all the same. Output:
/// one `double`, the fraud probability in [0, 1].
fn signature(artifact: &ModelArtifact) -> Signature {
    Signature {
        inputs: artifact
            .feature_names
            .iter()
            .map(|name| ColSpec::required(name.as_str(), ColumnType::Double))
            .collect(),
        outputs: vec![ColSpec::required(OUTPUT, ColumnType::Double)],
    }
}

#[cfg(test)]
mod tests {
    use fraudops_features::FEATURE_NAMES;
    use fraudops_model::artifact::ARTIFACT_FORMAT;

    use super::*;

    fn logged() -> LoggedModel {
        LoggedModel {
            model_id: "m-0123456789abcdef0123456789abcdef".into(),
            experiment_id: "1".into(),
            name: "gbdt-x".into(),
            artifact_uri: "mlflow-artifacts:/1/models/m-0123456789abcdef0123456789abcdef/artifacts"
                .into(),
            source_run_id: Some("fedcba9876543210fedcba9876543210".into()),
            status: None,
        }
    }

    #[test]
    fn the_embedded_model_is_described_with_its_features_and_output() {
        let artifact = fraudops_model::Model::embedded()
            .expect("embedded model")
            .artifact()
            .clone();
        let model = logged();
        let description = describe(&artifact, &model);

        let flavor = &description.flavors[FLAVOR];
        assert_eq!(flavor["artifact"], "model.json");
        assert_eq!(flavor["format_version"], ARTIFACT_FORMAT);
        assert_eq!(flavor["fraudops_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(flavor["loader"], "fraudops serve");
        assert_eq!(flavor["metrics"], "metrics.json");
        assert_eq!(flavor["model_version"], artifact.model_version.as_str());
        let pyfunc = &description.flavors[PYFUNC_FLAVOR];
        assert_eq!(pyfunc["loader_module"], "fraudops_pyfunc");
        assert_eq!(pyfunc["data"], "model.json");
        assert_eq!(
            format!(
                "{}/{}.py",
                pyfunc["code"].as_str().expect("code"),
                PYFUNC_MODULE
            ),
            PYFUNC_MODULE_PATH,
            "MLflow imports the module from the folder it is uploaded to"
        );
        assert!(PYFUNC_MODULE_SOURCE.contains("def _load_pyfunc(data_path):"));
        assert_eq!(description.flavors.len(), 2, "fraudops and python_function");

        let signature = description.signature.as_ref().expect("a signature");
        let names: Vec<&str> = signature.inputs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, FEATURE_NAMES, "the 20 features in the model's order");
        assert!(
            signature
                .inputs
                .iter()
                .all(|c| c.column_type == ColumnType::Double && c.required)
        );
        assert_eq!(
            signature.outputs,
            [ColSpec::required("fraud_probability", ColumnType::Double)]
        );

        assert_eq!(description.model_id, model.model_id);
        assert_eq!(description.artifact_path, model.artifact_uri);
        assert_eq!(description.run_id, model.source_run_id);

        // The file itself: MLflow's layout (tested in fraudops-mlflow), with these contents.
        let yaml = description.to_yaml().expect("yaml");
        assert!(
            yaml.contains("  fraudops:\n    artifact: model.json\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains(r#"{"type":"double","name":"TX_AMOUNT","required":true}"#),
            "{yaml}"
        );
    }
}
