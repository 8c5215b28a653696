# MLflow artifacts (models, metrics files) in Object Storage. Created by Terraform's own account; MLflow's
# account may read and write this bucket only (its grant below), with no folder role.
resource "yandex_storage_bucket" "mlflow" {
  bucket    = "${var.name_prefix}-mlflow-${var.folder_id}" # bucket names are global: the folder id makes it unique
  folder_id = var.folder_id
  max_size  = var.mlflow_bucket_max_size_gb * 1024 * 1024 * 1024

  grant {
    id          = yandex_iam_service_account.storage.id
    type        = "CanonicalUser"
    permissions = ["READ", "WRITE"]
  }

  # Registered model versions must stay loadable: keep overwritten or deleted objects for 30 days.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    id      = "expire-noncurrent"
    enabled = true
    noncurrent_version_expiration {
      days = 30
    }
  }

  anonymous_access_flags {
    read        = false
    list        = false
    config_read = false
  }
}

# The transaction lake (`fraudops archive`, docs/lake.md): Parquet files of everything the system saw, the
# training data of every retraining. A bucket of its own rather than a prefix of MLflow's: access is granted
# per bucket (the ACL below), so the archive's key reaches nothing else, and the lake needs none of MLflow's
# versioning: its files are written once under names fixed by their Kafka offsets, and a compaction deletes
# the small files it merged, which versioning would keep (and bill) as noncurrent versions.
#
# Created with the Terraform runner's IAM token (no static key): the grants need storage.admin, which the
# runner (admin on the folder) has and MLflow's account does not.
resource "yandex_storage_bucket" "lake" {
  bucket    = "${var.name_prefix}-lake-${var.folder_id}" # bucket names are global: the folder id makes it unique
  folder_id = var.folder_id
  # A guard, not a plan: at the cap writes fail, the archive stops committing and LakeArchiveStalled fires,
  # with nothing lost while Kafka keeps the records (7 days).
  max_size = var.lake_bucket_max_size_gb * 1024 * 1024 * 1024

  # Least privilege without folder roles (a folder role would reach every bucket of the folder): the
  # archive's account may list, read, write and delete objects here (its ledger, compaction); the training
  # pods' account may list and read. Neither has any other grant or role.
  grant {
    id          = yandex_iam_service_account.lake_writer.id
    type        = "CanonicalUser"
    permissions = ["READ", "WRITE"]
  }

  grant {
    id          = yandex_iam_service_account.lake_reader.id
    type        = "CanonicalUser"
    permissions = ["READ"]
  }

  # A file upload cut short by a crash (the ledger rolls its change back) leaves no parts to bill.
  lifecycle_rule {
    id                                     = "abort-incomplete-uploads"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 1
  }

  anonymous_access_flags {
    read        = false
    list        = false
    config_read = false
  }
}
