variable "cloud_id" {
  description = "Yandex Cloud cloud id (yc resource-manager cloud list)."
  type        = string
}

variable "folder_id" {
  description = "Folder id everything is created in (yc resource-manager folder list). Also makes the bucket name unique."
  type        = string
}

variable "service_account_key_file" {
  description = "Path to an authorized key (JSON) of a service account with the admin role on the folder. Null: use the YC_TOKEN environment variable instead."
  type        = string
  default     = null
}

variable "default_zone" {
  description = "Zone for zonal resources when none is given."
  type        = string
  default     = "ru-central1-a"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "fraudops"
}

variable "zones" {
  description = "Availability zones of the subnets, the regional master and the node groups, with each subnet's CIDR."
  type        = map(string)
  default = {
    "ru-central1-a" = "10.10.0.0/20"
    "ru-central1-b" = "10.10.16.0/20"
    "ru-central1-d" = "10.10.32.0/20"
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the master and the nodes. At least 1.30: the API pods use the preStop sleep action."
  type        = string
  default     = "1.30"
}

variable "cluster_ipv4_range" {
  description = "CIDR of the pods. Must not overlap the subnets."
  type        = string
  default     = "10.112.0.0/16"
}

variable "service_ipv4_range" {
  description = "CIDR of the Services. Must not overlap the subnets or the pods."
  type        = string
  default     = "10.96.0.0/16"
}

variable "node_cores" {
  description = "vCPUs per node. 6 API replicas x 500m CPU limit = 3 vCPU, plus Kafka (3 x 1), Prometheus, Airflow, MLflow and system pods: 3-6 nodes of 4 vCPU."
  type        = number
  default     = 4
}

variable "node_memory_gb" {
  description = "Memory per node, GB. The API needs little (6 x 256Mi limit); Kafka, Prometheus and Airflow need most."
  type        = number
  default     = 8
}

variable "node_core_fraction" {
  description = "Guaranteed vCPU share (%). 100: the HPA and the CPU alerts measure real cores, not burstable ones."
  type        = number
  default     = 100
}

variable "node_disk_size_gb" {
  description = "Boot disk size per node, GB (images, emptyDirs, logs)."
  type        = number
  default     = 64
}

variable "nodes_per_zone_min" {
  description = "Minimum nodes per zone's node group (cluster autoscaler lower bound). 1 x 3 zones = 3 nodes."
  type        = number
  default     = 1
}

variable "nodes_per_zone_max" {
  description = "Maximum nodes per zone's node group (cluster autoscaler upper bound). 2 x 3 zones = 6 nodes."
  type        = number
  default     = 2
}

variable "preemptible_nodes" {
  description = "Preemptible (cheaper, may be stopped any time within 24 h) nodes. For experiments only."
  type        = bool
  default     = false
}

variable "master_public_ip" {
  description = "Give the Kubernetes API a public address (kubectl and ArgoCD from outside the VPC)."
  type        = bool
  default     = true
}

variable "mlflow_bucket_max_size_gb" {
  description = "Size cap of the MLflow artifact bucket, GB (a guard against runaway logging)."
  type        = number
  default     = 50
}

variable "lake_bucket_max_size_gb" {
  description = "Size cap of the transaction lake bucket, GB (a guard: at the cap the archive stops committing and LakeArchiveStalled fires). Parquet of every event, kept for good: about 100 B per event."
  type        = number
  default     = 200
}

variable "api_host" {
  description = "The API's public name: the host of the production Ingress and of its Let's Encrypt certificate (deploy/k8s/overlays/production/kustomization.yaml). Gets an A record to the ingress address when dns_zone is set, and must then lie within it."
  type        = string
  default     = "api.fraudops.example.com"
}

variable "dns_zone" {
  description = "A public Cloud DNS zone to create for api_host, with a trailing dot (e.g. \"fraudops.example.com.\"); delegate it at the registrar. Null: no zone and no record, point api_host at the output ingress_address wherever your DNS is."
  type        = string
  default     = null

  validation {
    condition     = var.dns_zone == null || can(regex("\\.$", var.dns_zone))
    error_message = "dns_zone must end with a dot, e.g. \"fraudops.example.com.\"."
  }
}
