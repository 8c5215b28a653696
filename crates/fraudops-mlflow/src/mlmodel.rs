//! The `MLmodel` file: MLflow's description of a model, a YAML file at the root of the model's
//! artifacts. It names the flavors that can load the model and the model's signature (input
//! columns and outputs with their types).
//!
//! Why here: MLflow's clients (`mlflow.models.get_model_info`, `Model.load`, the UI's model page)
//! read this file and nothing else to say what a model takes and returns, so a registered version
//! without it is an opaque folder to them. This module only knows MLflow's layout
//! (`mlflow/models/model.py`, `Model.to_dict`); what goes into a flavor or a signature is the
//! caller's business.
//!
//! Layout (as MLflow 3's own `Model.to_yaml` writes it, keys sorted):
//! ```yaml
//! artifact_path: mlflow-artifacts:/1/models/m-.../artifacts
//! flavors:
//!   <flavor>: {<key>: <value>, ...}
//! model_id: m-...
//! model_uuid: m-...
//! run_id: <run that produced it>
//! signature:
//!   inputs: '[{"type": "double", "name": "...", "required": true}, ...]'
//!   outputs: '[{"type": "double", "name": "...", "required": true}]'
//! utc_time_created: '2025-01-01 12:00:00.000000'
//! ```
//! The signature's `inputs` and `outputs` are JSON strings inside the YAML, as MLflow writes and
//! parses them (`ModelSignature.to_dict` / `from_dict`). `mlflow_version` is left out: no MLflow
//! library wrote the file, and MLflow itself omits the key when it is unknown.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::MlflowError;

/// The file name MLflow looks for at the root of a model's artifacts.
pub const MLMODEL_FILE: &str = "MLmodel";

/// A column type of a signature: MLflow's `DataType` names (`mlflow/types/schema.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// `bool`.
    Boolean,
    /// 32-bit signed integer.
    Integer,
    /// 64-bit signed integer (no missing values: an integer column cannot hold NaN).
    Long,
    /// 32-bit float.
    Float,
    /// 64-bit float; NaN is a valid value (how a missing value is usually written).
    Double,
    /// UTF-8 text.
    String,
    /// Raw bytes.
    Binary,
    /// A timestamp.
    Datetime,
}

/// One named column of a signature (MLflow's `ColSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColSpec {
    /// The column's type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// The column's name, as a DataFrame's column would be called.
    pub name: String,
    /// Whether the column must be present (`false`: the column may be left out entirely; a value
    /// that is present but missing is a matter of the type, e.g. NaN in a double column).
    pub required: bool,
}

impl ColSpec {
    /// A column that must be present.
    pub fn required(name: impl Into<String>, column_type: ColumnType) -> Self {
        Self {
            column_type,
            name: name.into(),
            required: true,
        }
    }
}

/// What a model takes and returns, column by column (MLflow's column-based `ModelSignature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Input columns, in the order the model reads them.
    pub inputs: Vec<ColSpec>,
    /// Output columns.
    pub outputs: Vec<ColSpec>,
}

/// The content of an `MLmodel` file for an MLflow 3 logged model.
#[derive(Debug, Clone, PartialEq)]
pub struct MlModel {
    /// Where the model's artifacts live: the logged model's `artifact_uri`, which MLflow 3 writes
    /// here.
    pub artifact_path: String,
    /// The logged model's id (`m-...`); also written as `model_uuid`, as MLflow 3 does.
    pub model_id: String,
    /// The run that produced the model.
    pub run_id: Option<String>,
    /// Flavor name → its configuration (MLflow writes the keys sorted; so does this).
    pub flavors: BTreeMap<String, Map<String, Value>>,
    /// Inputs and outputs; `None` leaves the key out (MLflow then shows no signature).
    pub signature: Option<Signature>,
    /// When the description was written (UTC; MLflow's `utc_time_created`).
    pub created: SystemTime,
}

impl MlModel {
    /// The description of `model_id` whose artifacts live at `artifact_uri`, produced by `run_id`,
    /// written now, with no flavor and no signature yet.
    pub fn new(model_id: &str, artifact_uri: &str, run_id: Option<&str>) -> Self {
        Self {
            artifact_path: artifact_uri.to_owned(),
            model_id: model_id.to_owned(),
            run_id: run_id.map(str::to_owned),
            flavors: BTreeMap::new(),
            signature: None,
            created: SystemTime::now(),
        }
    }

    /// Adds (or replaces) the flavor `name` with its configuration.
    pub fn with_flavor(mut self, name: &str, config: Map<String, Value>) -> Self {
        self.flavors.insert(name.to_owned(), config);
        self
    }

    /// Sets the signature.
    pub fn with_signature(mut self, signature: Signature) -> Self {
        self.signature = Some(signature);
        self
    }

    /// The `MLmodel` YAML text. Deterministic: the same description gives the same bytes.
    pub fn to_yaml(&self) -> Result<String, MlflowError> {
        let encode = |what: &str, e: &dyn std::fmt::Display| {
            MlflowError::Encoding(format!("MLmodel {what}: {e}"))
        };
        let columns = |what: &str, columns: &[ColSpec]| {
            serde_json::to_string(columns).map_err(|e| encode(what, &e))
        };
        let signature = match &self.signature {
            Some(s) => Some(SignatureDocument {
                inputs: columns("signature inputs", &s.inputs)?,
                outputs: columns("signature outputs", &s.outputs)?,
            }),
            None => None,
        };
        let created = chrono::DateTime::<chrono::Utc>::from(self.created)
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string();
        let document = Document {
            artifact_path: &self.artifact_path,
            flavors: &self.flavors,
            model_id: &self.model_id,
            model_uuid: &self.model_id,
            run_id: self.run_id.as_deref(),
            signature,
            utc_time_created: created,
        };
        serde_yaml::to_string(&document).map_err(|e| encode("document", &e))
    }
}

/// The YAML document; fields in MLflow's (sorted) key order.
#[derive(Serialize)]
struct Document<'a> {
    artifact_path: &'a str,
    flavors: &'a BTreeMap<String, Map<String, Value>>,
    model_id: &'a str,
    model_uuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<SignatureDocument>,
    utc_time_created: String,
}

/// MLflow keeps each schema as a JSON string inside the YAML.
#[derive(Serialize)]
struct SignatureDocument {
    inputs: String,
    outputs: String,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    fn example() -> MlModel {
        let mut flavor = Map::new();
        flavor.insert("artifact".into(), json!("model.json"));
        flavor.insert("format_version".into(), json!(1));
        let mut model = MlModel::new(
            "m-0123",
            "mlflow-artifacts:/1/models/m-0123/artifacts",
            Some("abc"),
        )
        .with_flavor("custom", flavor)
        .with_signature(Signature {
            inputs: vec![
                ColSpec::required("A", ColumnType::Double),
                ColSpec::required("B", ColumnType::Long),
            ],
            outputs: vec![ColSpec::required("p", ColumnType::Double)],
        });
        // 2025-01-02 03:04:05.5 UTC.
        model.created = UNIX_EPOCH + Duration::from_millis(1_735_787_045_500);
        model
    }

    #[test]
    fn yaml_has_mlflow_layout_in_sorted_key_order() {
        let yaml = example().to_yaml().expect("yaml");
        let expected = "\
artifact_path: mlflow-artifacts:/1/models/m-0123/artifacts
flavors:
  custom:
    artifact: model.json
    format_version: 1
model_id: m-0123
model_uuid: m-0123
run_id: abc
signature:
  inputs: '[{\"type\":\"double\",\"name\":\"A\",\"required\":true},{\"type\":\"long\",\"name\":\"B\",\"required\":true}]'
  outputs: '[{\"type\":\"double\",\"name\":\"p\",\"required\":true}]'
utc_time_created: 2025-01-02 03:04:05.500000
";
        assert_eq!(yaml, expected);
        assert_eq!(example().to_yaml().expect("yaml"), yaml, "deterministic");
    }

    #[test]
    fn signature_strings_parse_back_as_mlflow_column_specs() {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&example().to_yaml().expect("yaml")).expect("parse");
        let inputs: Value = serde_json::from_str(
            doc["signature"]["inputs"]
                .as_str()
                .expect("inputs is a string"),
        )
        .expect("inputs JSON");
        assert_eq!(
            inputs,
            json!([
                {"type": "double", "name": "A", "required": true},
                {"type": "long", "name": "B", "required": true},
            ])
        );
        assert_eq!(doc["model_uuid"], doc["model_id"]);
    }

    #[test]
    fn optional_keys_are_left_out() {
        let mut model = MlModel::new("m-1", "mlflow-artifacts:/x", None);
        model.created = UNIX_EPOCH;
        let yaml = model.to_yaml().expect("yaml");
        assert!(!yaml.contains("run_id"), "{yaml}");
        assert!(!yaml.contains("signature"), "{yaml}");
        assert!(yaml.contains("flavors: {}"), "{yaml}");
        assert!(
            yaml.contains("utc_time_created: 1970-01-01 00:00:00.000000"),
            "{yaml}"
        );
    }
}
