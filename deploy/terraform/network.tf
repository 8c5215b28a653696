# One VPC, one subnet per zone: the regional master and the per-zone node groups need a subnet in each.
resource "yandex_vpc_network" "main" {
  name        = "${var.name_prefix}-network"
  description = "fraudops: Kubernetes nodes, pods and load balancers"
}

resource "yandex_vpc_subnet" "zone" {
  for_each = var.zones

  name           = "${var.name_prefix}-${each.key}"
  zone           = each.key
  network_id     = yandex_vpc_network.main.id
  v4_cidr_blocks = [each.value]
  # Nodes reach the registry, the object storage and the internet through a NAT gateway; they need no
  # public addresses of their own.
  route_table_id = yandex_vpc_route_table.nat.id
}

resource "yandex_vpc_gateway" "nat" {
  name = "${var.name_prefix}-nat"
  shared_egress_gateway {}
}

resource "yandex_vpc_route_table" "nat" {
  name       = "${var.name_prefix}-nat"
  network_id = yandex_vpc_network.main.id

  static_route {
    destination_prefix = "0.0.0.0/0"
    gateway_id         = yandex_vpc_gateway.nat.id
  }
}
