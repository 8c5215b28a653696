//! Signed models: who may decide what the fleet scores with.
//!
//! An artifact's checksum catches corruption, not tampering: whoever can write to the registry can also
//! write a matching checksum. So `train`/`register` sign the exact bytes they publish with an Ed25519 key
//! held in a Secret, the signature travels beside the artifact (`model.json.sig`, 128 hex digits), and
//! `serve` checks it against the public keys it trusts before it swaps a model in. Ed25519 rather than
//! Sigstore: no transparency log or OIDC issuer to reach from the cluster, one 32-byte key to keep, and
//! verification is a pure function of the bytes (microseconds per artifact).

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The file a signature is kept in, beside the artifact: `<artifact>.sig`.
pub fn signature_path(artifact: &Path) -> std::path::PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sig");
    name.into()
}

/// What can go wrong with keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A key or signature file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the hex this module writes.
    #[error("{what}: {reason}")]
    Malformed {
        /// What was being read (a file, a signature).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No signature came with the artifact.
    #[error("the artifact is not signed")]
    Unsigned,
    /// The signature is not by any trusted key, or the bytes were changed after signing.
    #[error(
        "the signature does not verify with any trusted key (signed by another key, or the artifact was changed)"
    )]
    BadSignature,
}

fn decode<const N: usize>(what: &str, text: &str) -> Result<[u8; N], SigningError> {
    let bytes = hex::decode(text.trim()).map_err(|e| SigningError::Malformed {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| SigningError::Malformed {
            what: what.to_owned(),
            reason: format!("{} bytes, want {N}", b.len()),
        })
}

fn read(path: &Path) -> Result<String, SigningError> {
    std::fs::read_to_string(path).map_err(|source| SigningError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The key `train`/`register` sign with: a file holding the 32-byte secret seed in hex (a Secret).
pub struct ModelSigner(SigningKey);

impl ModelSigner {
    /// Reads the secret seed from `path`.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let seed = decode::<32>(&path.display().to_string(), &read(path)?)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// A new key pair: (secret seed hex, public key hex).
    pub fn generate() -> (String, String) {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        (
            hex::encode(key.to_bytes()),
            hex::encode(key.verifying_key().to_bytes()),
        )
    }

    /// The signature of exactly these bytes, in hex (what `<artifact>.sig` holds).
    pub fn sign(&self, artifact: &[u8]) -> String {
        hex::encode(self.0.sign(artifact).to_bytes())
    }

    /// The public key to give `serve` (hex).
    pub fn public_key(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }
}

/// The public keys `serve` accepts models from (`MODEL_TRUSTED_KEYS_FILE`: one hex key per line, `#`
/// comments): several, so a key can be rotated without a gap.
#[derive(Clone, Debug)]
pub struct TrustedKeys(Vec<VerifyingKey>);

impl TrustedKeys {
    /// Reads the keys from `path`; an empty list is refused (it would trust nothing, silently).
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        Self::parse(&path.display().to_string(), &read(path)?)
    }

    /// Keys from text (one hex key per line).
    pub fn parse(what: &str, text: &str) -> Result<Self, SigningError> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let bytes = decode::<32>(what, l)?;
                VerifyingKey::from_bytes(&bytes).map_err(|e| SigningError::Malformed {
                    what: what.to_owned(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SigningError::Malformed {
                what: what.to_owned(),
                reason: "no key".into(),
            });
        }
        Ok(Self(keys))
    }

    /// Whether `signature` (hex, `None` when the artifact came without one) signs exactly `artifact`
    /// by one of the trusted keys.
    pub fn verify(&self, artifact: &[u8], signature: Option<&str>) -> Result<(), SigningError> {
        let text = signature.ok_or(SigningError::Unsigned)?;
        let bytes = decode::<64>("signature", text)?;
        let signature = Signature::from_bytes(&bytes);
        if self
            .0
            .iter()
            .any(|key| key.verify(artifact, &signature).is_ok())
        {
            Ok(())
        } else {
            Err(SigningError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> ModelSigner {
        let (seed, _) = ModelSigner::generate();
        ModelSigner(SigningKey::from_bytes(
            &decode::<32>("seed", &seed).expect("seed"),
        ))
    }

    #[test]
    fn a_signed_artifact_verifies_and_any_change_or_other_key_is_refused() {
        let key = signer();
        let other = signer();
        let artifact = br#"{"format":"fraudops-gbdt","version":"gbdt-1"}"#;
        let signature = key.sign(artifact);
        let trusted =
            TrustedKeys::parse("test", &format!("# ours\n{}\n", key.public_key())).expect("keys");
        trusted
            .verify(artifact, Some(&signature))
            .expect("verifies");
        let mut tampered = artifact.to_vec();
        tampered[10] ^= 1;
        assert!(matches!(
            trusted.verify(&tampered, Some(&signature)),
            Err(SigningError::BadSignature)
        ));
        assert!(matches!(
            trusted.verify(artifact, Some(&other.sign(artifact))),
            Err(SigningError::BadSignature)
        ));
        assert!(matches!(
            trusted.verify(artifact, None),
            Err(SigningError::Unsigned)
        ));
        assert!(matches!(
            trusted.verify(artifact, Some("zz")),
            Err(SigningError::Malformed { .. })
        ));
        // Two trusted keys (a rotation): either verifies.
        let both = TrustedKeys::parse(
            "test",
            &format!("{}\n{}\n", other.public_key(), key.public_key()),
        )
        .expect("keys");
        both.verify(artifact, Some(&signature)).expect("verifies");
    }

    #[test]
    fn a_key_list_without_keys_is_refused() {
        assert!(TrustedKeys::parse("empty", "# nothing\n\n").is_err());
    }
}
