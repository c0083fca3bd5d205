# Copy to e.g. prod.tfvars (ignored by git) and pass it to scripts/deploy-aws:
#   scripts/deploy-aws -var-file=terraform/prod.tfvars
region      = "eu-central-1"
name_prefix = "ztna"
admin_cidrs = ["198.51.100.7/32"]
# The whole line of your public key file (cat ~/.ssh/id_ed25519.pub): plan
# refuses anything else, and scripts/deploy-aws checks the key as AWS will.
ssh_public_key = "REPLACE with the line of your ~/.ssh/id_ed25519.pub"
allowed_cidrs  = ["0.0.0.0/0"]
# Two or more: a rolling upgrade restarts one server while the others carry
# the traffic. With one, every upgrade or configuration change is an outage.
server_count = 2

# Two connectors per service, so they can be restarted one at a time too.
connectors = [
  { service = "db", forward = "10.42.1.50:5432", instances = 2 },
  { service = "dns", forward = "127.0.0.1:53", instances = 2 },
]
