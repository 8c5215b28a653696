//! `fraudops model-key new`: a key pair whose secret half signs and whose public half verifies, the secret
//! readable by its owner only, and nothing overwritten.

mod common;

use fraudops_model::signing::{ModelSigner, TrustedKeys};

#[test]
fn a_new_key_pair_signs_what_its_public_half_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::fraudops_command()
        .args(["model-key", "new", "--out"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8(out.stdout).expect("utf-8");
    let signer = ModelSigner::load(&dir.path().join("model-signing.key")).expect("secret");
    assert_eq!(signer.public_key(), public.trim());
    let trusted = TrustedKeys::load(&dir.path().join("model-signing.pub")).expect("public");
    trusted
        .verify(b"model", Some(&signer.sign(b"model")))
        .expect("verifies");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("model-signing.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the secret is readable by its owner only"
        );
    }
    // A second run refuses to overwrite the pair.
    let again = common::fraudops_command()
        .args(["model-key", "new", "--out"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert_eq!(
        ModelSigner::load(&dir.path().join("model-signing.key"))
            .expect("secret")
            .public_key(),
        signer.public_key()
    );
}
