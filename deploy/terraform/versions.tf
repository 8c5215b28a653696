terraform {
  # 1.10: the S3 backend's own lock file (use_lockfile), no separate lock table needed.
  required_version = ">= 1.10.0"

  required_providers {
    yandex = {
      source = "yandex-cloud/yandex"
      # Pinned exactly: provider releases have changed resource schemas before. Bump deliberately. The
      # provider registry is not reachable from the machine this was written on, so .terraform.lock.hcl (the
      # checksums) is made by `terraform providers lock` on first use and committed then (README.md).
      version = "= 0.130.0"
    }
  }

  # The state (it holds the static keys) lives in an Object Storage bucket of its own, locked while a plan or
  # apply runs: `terraform init -backend-config=backend.hcl` (backend.hcl.example; README.md "Remote state").
  # Its values (bucket, key, endpoint) differ per deployment, so they are not here.
  backend "s3" {}
}

provider "yandex" {
  cloud_id  = var.cloud_id
  folder_id = var.folder_id
  zone      = var.default_zone
  # Authentication: a service account key file (CI) or YC_TOKEN from `yc iam create-token` (a person).
  service_account_key_file = var.service_account_key_file
}
