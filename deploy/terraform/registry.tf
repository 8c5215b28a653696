# Images: cr.yandex/<registry id>/fraudops (deploy/k8s/overlays/production).
resource "yandex_container_registry" "main" {
  name = "${var.name_prefix}-registry"
}

# Keep the registry small: CI pushes one image per commit on main.
resource "yandex_container_repository" "fraudops" {
  name = "${yandex_container_registry.main.id}/fraudops"
}

resource "yandex_container_repository_lifecycle_policy" "fraudops" {
  name          = "keep-recent"
  status        = "active"
  repository_id = yandex_container_repository.fraudops.id

  rule {
    description   = "Untagged layers older than a day"
    untagged      = true
    expire_period = "24h"
  }

  rule {
    description   = "Everything but the 30 most recent images after 30 days"
    tag_regexp    = ".*"
    untagged      = false
    expire_period = "720h"
    retained_top  = 30
  }
}
