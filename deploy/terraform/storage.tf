# MLflow artifacts (models, metrics files) in Object Storage. Created with the storage account's own static
# key, so the bucket's owner is the account MLflow uses.
resource "yandex_storage_bucket" "mlflow" {
  bucket     = "${var.name_prefix}-mlflow-${var.folder_id}" # bucket names are global: the folder id makes it unique
  access_key = yandex_iam_service_account_static_access_key.storage.access_key
  secret_key = yandex_iam_service_account_static_access_key.storage.secret_key
  max_size   = var.mlflow_bucket_max_size_gb * 1024 * 1024 * 1024

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

  depends_on = [yandex_resourcemanager_folder_iam_member.storage_editor]
}
