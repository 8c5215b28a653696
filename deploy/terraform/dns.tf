# The API's public address and name. The ingress controller's load balancer (a Service of type LoadBalancer,
# deploy/platform/ingress-nginx.values.yaml) takes this reserved address through controller.service.loadBalancerIP,
# so the address outlives a re-created load balancer and a DNS record can point at it before the first sync.
# The TLS certificate is not Terraform's: cert-manager obtains it from Let's Encrypt over ACME HTTP-01 once the
# name resolves here (deploy/platform/cert-manager).
resource "yandex_vpc_address" "ingress" {
  name        = "${var.name_prefix}-ingress"
  description = "fraudops: the ingress controller's load balancer (the API's public address)"

  external_ipv4_address {
    zone_id = var.default_zone
  }
}

# Optional: a public Cloud DNS zone with the API's A record. Without var.dns_zone, point var.api_host at the
# output ingress_address wherever the domain's DNS is kept. With it, delegate the zone to Cloud DNS at the
# registrar (NS ns1.yandexcloud.net. and ns2.yandexcloud.net.).
resource "yandex_dns_zone" "public" {
  count = var.dns_zone == null ? 0 : 1

  name        = "${var.name_prefix}-public"
  description = "fraudops: the API's public name"
  zone        = var.dns_zone
  public      = true
}

resource "yandex_dns_recordset" "api" {
  count = var.dns_zone == null ? 0 : 1

  zone_id = yandex_dns_zone.public[0].id
  name    = "${var.api_host}."
  type    = "A"
  ttl     = 300
  data    = [yandex_vpc_address.ingress.external_ipv4_address[0].address]
}
