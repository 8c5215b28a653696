output "cluster_id" {
  description = "Managed Kubernetes cluster id: yc managed-kubernetes cluster get-credentials --id <id> --external"
  value       = yandex_kubernetes_cluster.main.id
}

output "cluster_external_endpoint" {
  description = "Public endpoint of the Kubernetes API (null without master_public_ip)."
  value       = yandex_kubernetes_cluster.main.master[0].external_v4_endpoint
}

output "container_registry_id" {
  description = "Registry id: the REGISTRY_ID of cr.yandex/REGISTRY_ID/fraudops in deploy/k8s/overlays/production and the CI variable YC_REGISTRY_ID."
  value       = yandex_container_registry.main.id
}

output "image_repository" {
  description = "Where CI pushes the fraudops image."
  value       = "cr.yandex/${yandex_container_registry.main.id}/fraudops"
}

output "mlflow_bucket" {
  description = "Object Storage bucket of the MLflow artifacts (deploy/platform/mlflow.values.yaml artifactRoot.s3.bucket)."
  value       = yandex_storage_bucket.mlflow.bucket
}

output "mlflow_s3_access_key_id" {
  description = "Static access key id for the MLflow bucket (Secret mlflow-s3, key AWS_ACCESS_KEY_ID)."
  value       = yandex_iam_service_account_static_access_key.storage.access_key
}

output "mlflow_s3_secret_access_key" {
  description = "Static secret key for the MLflow bucket (Secret mlflow-s3, key AWS_SECRET_ACCESS_KEY)."
  value       = yandex_iam_service_account_static_access_key.storage.secret_key
  sensitive   = true
}

output "lake_bucket" {
  description = "Object Storage bucket of the transaction lake: LAKE_URL s3://<bucket>/lake (deploy/k8s/base/archive-deployment.yaml, deploy/platform/airflow.values.yaml)."
  value       = yandex_storage_bucket.lake.bucket
}

output "lake_writer_access_key_id" {
  description = "Static access key id of the archive's account (Secret fraudops-lake in namespace fraudops, key AWS_ACCESS_KEY_ID)."
  value       = yandex_iam_service_account_static_access_key.lake_writer.access_key
}

output "lake_writer_secret_access_key" {
  description = "Static secret key of the archive's account (Secret fraudops-lake in namespace fraudops, key AWS_SECRET_ACCESS_KEY)."
  value       = yandex_iam_service_account_static_access_key.lake_writer.secret_key
  sensitive   = true
}

output "lake_reader_access_key_id" {
  description = "Static access key id of the retraining's read-only account (Secret fraudops-lake-reader in namespace airflow, key AWS_ACCESS_KEY_ID)."
  value       = yandex_iam_service_account_static_access_key.lake_reader.access_key
}

output "lake_reader_secret_access_key" {
  description = "Static secret key of the retraining's read-only account (Secret fraudops-lake-reader in namespace airflow, key AWS_SECRET_ACCESS_KEY)."
  value       = yandex_iam_service_account_static_access_key.lake_reader.secret_key
  sensitive   = true
}

output "ci_registry_key_json" {
  description = "Authorized key of the CI account, for `docker login -u json_key cr.yandex` (GitHub secret YC_REGISTRY_KEY)."
  value = jsonencode({
    id                 = yandex_iam_service_account_key.ci.id
    service_account_id = yandex_iam_service_account_key.ci.service_account_id
    created_at         = yandex_iam_service_account_key.ci.created_at
    key_algorithm      = yandex_iam_service_account_key.ci.key_algorithm
    public_key         = yandex_iam_service_account_key.ci.public_key
    private_key        = yandex_iam_service_account_key.ci.private_key
  })
  sensitive = true
}

output "ingress_address" {
  description = "The reserved public address of the ingress controller's load balancer: controller.service.loadBalancerIP in deploy/platform/ingress-nginx.values.yaml, and the A record of api_host."
  value       = yandex_vpc_address.ingress.external_ipv4_address[0].address
}
