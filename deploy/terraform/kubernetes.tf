# Managed Kubernetes: a regional master (one replica per zone, survives a zone outage) and one autoscaled node
# group per zone (Yandex autoscales a node group only within one zone, so zone spread needs a group per zone).

resource "yandex_kubernetes_cluster" "main" {
  name        = "${var.name_prefix}-k8s"
  description = "fraudops: scoring API, Kafka, monitoring, Airflow, MLflow"
  network_id  = yandex_vpc_network.main.id

  master {
    version   = var.kubernetes_version
    public_ip = var.master_public_ip

    regional {
      region = "ru-central1"

      dynamic "location" {
        for_each = yandex_vpc_subnet.zone
        content {
          zone      = location.value.zone
          subnet_id = location.value.id
        }
      }
    }

    maintenance_policy {
      auto_upgrade = true
      maintenance_window {
        day        = "sunday"
        start_time = "02:00"
        duration   = "3h"
      }
    }
  }

  service_account_id      = yandex_iam_service_account.cluster.id
  node_service_account_id = yandex_iam_service_account.nodes.id
  cluster_ipv4_range      = var.cluster_ipv4_range
  service_ipv4_range      = var.service_ipv4_range
  release_channel         = "STABLE"
  # NetworkPolicy support (Calico), so namespaces can be isolated later without recreating the cluster.
  network_policy_provider = "CALICO"

  kms_provider {
    key_id = yandex_kms_symmetric_key.k8s_secrets.id
  }

  # The roles must exist before the cluster uses its accounts, and outlive it on destroy.
  depends_on = [
    yandex_resourcemanager_folder_iam_member.cluster,
    yandex_resourcemanager_folder_iam_member.nodes_puller,
    yandex_kms_symmetric_key_iam_binding.k8s_secrets,
  ]
}

resource "yandex_kubernetes_node_group" "zone" {
  for_each = yandex_vpc_subnet.zone

  cluster_id  = yandex_kubernetes_cluster.main.id
  name        = "${var.name_prefix}-${each.key}"
  description = "Nodes in ${each.key}"
  version     = var.kubernetes_version

  instance_template {
    platform_id = "standard-v3"

    resources {
      cores         = var.node_cores
      memory        = var.node_memory_gb
      core_fraction = var.node_core_fraction
    }

    boot_disk {
      type = "network-ssd"
      size = var.node_disk_size_gb
    }

    network_interface {
      subnet_ids = [each.value.id]
      nat        = false # egress through the NAT gateway (network.tf)
    }

    container_runtime {
      type = "containerd"
    }

    scheduling_policy {
      preemptible = var.preemptible_nodes
    }
  }

  # The cluster autoscaler adds a node when pods are Pending for lack of room (e.g. the HPA's 6th replica
  # together with a busy platform) and removes idle ones.
  scale_policy {
    auto_scale {
      min     = var.nodes_per_zone_min
      max     = var.nodes_per_zone_max
      initial = var.nodes_per_zone_min
    }
  }

  allocation_policy {
    location {
      zone = each.key
    }
  }

  deploy_policy {
    max_expansion   = 1
    max_unavailable = 0 # upgrades add a node before removing one: the PDBs always have room
  }

  maintenance_policy {
    auto_upgrade = true
    auto_repair  = true
    maintenance_window {
      day        = "sunday"
      start_time = "03:00"
      duration   = "3h"
    }
  }
}
