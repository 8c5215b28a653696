# Service accounts, each with only the roles its job needs.

# The cluster's own account: manages cloud resources for Kubernetes (load balancers for Services of type
# LoadBalancer, public addresses, disks).
resource "yandex_iam_service_account" "cluster" {
  name        = "${var.name_prefix}-k8s-cluster"
  description = "Managed Kubernetes cluster: load balancers, addresses, disks"
}

resource "yandex_resourcemanager_folder_iam_member" "cluster" {
  for_each = toset([
    "k8s.clusters.agent",
    "vpc.publicAdmin",
  ])

  folder_id = var.folder_id
  role      = each.value
  member    = "serviceAccount:${yandex_iam_service_account.cluster.id}"
}

# The nodes' account: pulls images from the Container Registry, nothing else.
resource "yandex_iam_service_account" "nodes" {
  name        = "${var.name_prefix}-k8s-nodes"
  description = "Kubernetes nodes: pull images from the container registry"
}

resource "yandex_resourcemanager_folder_iam_member" "nodes_puller" {
  folder_id = var.folder_id
  role      = "container-registry.images.puller"
  member    = "serviceAccount:${yandex_iam_service_account.nodes.id}"
}

# MLflow's account: reads and writes the artifact bucket through a static (S3) access key.
resource "yandex_iam_service_account" "storage" {
  name        = "${var.name_prefix}-mlflow-storage"
  description = "MLflow artifact store: S3 access to the MLflow bucket"
}

# No folder role: a folder role would reach every bucket of the folder. The account may read and write its
# own bucket only, by the bucket's grant (storage.tf), as the lake's accounts do.

resource "yandex_iam_service_account_static_access_key" "storage" {
  service_account_id = yandex_iam_service_account.storage.id
  description        = "MLflow artifact store (Secret mlflow-s3 in the cluster)"
}

# CI's account: pushes images (GitHub Actions secret YC_REGISTRY_KEY, see ../README.md).
resource "yandex_iam_service_account" "ci" {
  name        = "${var.name_prefix}-ci"
  description = "CI: push images to the container registry"
}

resource "yandex_container_registry_iam_binding" "ci_pusher" {
  registry_id = yandex_container_registry.main.id
  role        = "container-registry.images.pusher"
  members     = ["serviceAccount:${yandex_iam_service_account.ci.id}"]
}

resource "yandex_iam_service_account_key" "ci" {
  service_account_id = yandex_iam_service_account.ci.id
  description        = "GitHub Actions: docker login to cr.yandex"
  key_algorithm      = "RSA_4096"
}

# Encrypts the cluster's Kubernetes Secrets at rest (etcd) with a key the folder owns.
resource "yandex_kms_symmetric_key" "k8s_secrets" {
  name              = "${var.name_prefix}-k8s-secrets"
  description       = "Encryption of Kubernetes Secrets in the managed master"
  default_algorithm = "AES_256"
  rotation_period   = "8760h" # yearly
}

resource "yandex_kms_symmetric_key_iam_binding" "k8s_secrets" {
  symmetric_key_id = yandex_kms_symmetric_key.k8s_secrets.id
  role             = "kms.keys.encrypterDecrypter"
  members          = ["serviceAccount:${yandex_iam_service_account.cluster.id}"]
}

# The transaction lake's two accounts, each with its own static (S3) key and no folder role: what they may do
# is granted on the lake bucket alone (storage.tf).
# The archive (`fraudops archive`): list, read, write and delete in the lake bucket (Secret fraudops-lake).
resource "yandex_iam_service_account" "lake_writer" {
  name        = "${var.name_prefix}-lake-writer"
  description = "fraudops archive: writes the transaction lake bucket (bucket ACL only, no folder role)"
}

resource "yandex_iam_service_account_static_access_key" "lake_writer" {
  service_account_id = yandex_iam_service_account.lake_writer.id
  description        = "fraudops archive (Secret fraudops-lake in namespace fraudops)"
}

# The retraining's reader (ml_model_retrain's fetch_data pod, the only step that reads the lake): list and read
# the lake bucket, nothing else
# (Secret fraudops-lake-reader in namespace airflow).
resource "yandex_iam_service_account" "lake_reader" {
  name        = "${var.name_prefix}-lake-reader"
  description = "Retraining: reads the transaction lake bucket (bucket ACL only, no folder role)"
}

resource "yandex_iam_service_account_static_access_key" "lake_reader" {
  service_account_id = yandex_iam_service_account.lake_reader.id
  description        = "ml_model_retrain pods (Secret fraudops-lake-reader in namespace airflow)"
}
