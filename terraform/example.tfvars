# Copy to e.g. prod.tfvars (ignored by git) and pass it to scripts/deploy-aws:
#   scripts/deploy-aws -var-file=terraform/prod.tfvars
region         = "eu-central-1"
name_prefix    = "ztna"
admin_cidrs    = ["198.51.100.7/32"]
allowed_cidrs  = ["0.0.0.0/0"]
ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyReplaceMeWithYourOwnKeyMaterial0 you@laptop"
server_count   = 1

connectors = [
  { service = "db", forward = "10.42.1.50:5432" },
  { service = "dns", forward = "127.0.0.1:53", instances = 2 },
]
