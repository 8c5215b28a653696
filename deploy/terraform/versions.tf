terraform {
  required_version = ">= 1.5.0"

  required_providers {
    yandex = {
      source = "yandex-cloud/yandex"
      # Pinned to a patch series: provider minor releases have changed resource schemas before. Bump
      # deliberately, then commit the new .terraform.lock.hcl.
      version = "~> 0.130.0"
    }
  }

  # State stays local by default (terraform.tfstate, gitignored). For a team, move it to an Object Storage
  # bucket with the S3 backend; see README.md "Remote state".
}

provider "yandex" {
  cloud_id  = var.cloud_id
  folder_id = var.folder_id
  zone      = var.default_zone
  # Authentication: a service account key file (CI) or YC_TOKEN from `yc iam create-token` (a person).
  service_account_key_file = var.service_account_key_file
}
