# Deployment targets (docs/deploy.md). Included at the end of the Makefile: uses its $(STAMP) and $(BIN).
#
#   make package [STAGE=dev]                    build/package/sam.json + deployment.zip, checked by cfn-lint;
#                                               needs no AWS account (fake credentials inside)
#   make deploy STAGE=dev DEPLOY_BUCKET=...     package, upload the code to S3, create or update the stack
#   make bootstrap STAGE=dev                    the Spaces bucket (CORS, lifecycle) and MongoDB indexes
#   make outputs STAGE=dev                      the stack's URLs (HTTP API, WebSocket, queues)

STAGE ?= dev
PACKAGE_DIR ?= build/package
PACKAGE_REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
STACK_NAME ?= studio-uploads-$(STAGE)
DEPLOY_BUCKET ?=
# Extra template parameters, e.g. DEPLOY_PARAMETERS="AlarmEmail=ops@example.com"
DEPLOY_PARAMETERS ?=
AWS ?= aws

.PHONY: package deploy deploy-bucket bootstrap outputs

package: $(STAMP)
	$(BIN)/python infra/package.py --stage $(STAGE) --region $(PACKAGE_REGION) --out $(PACKAGE_DIR)
	$(BIN)/cfn-lint --regions $(PACKAGE_REGION) -- $(PACKAGE_DIR)/sam.json

deploy: deploy-bucket package
	$(AWS) cloudformation package --region $(PACKAGE_REGION) --template-file $(PACKAGE_DIR)/sam.json \
		--s3-bucket $(DEPLOY_BUCKET) --s3-prefix $(STACK_NAME) --output-template-file $(PACKAGE_DIR)/packaged.yaml
	$(AWS) cloudformation deploy --region $(PACKAGE_REGION) --template-file $(PACKAGE_DIR)/packaged.yaml \
		--stack-name $(STACK_NAME) --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		$(if $(strip $(DEPLOY_PARAMETERS)),--parameter-overrides $(DEPLOY_PARAMETERS))
	$(MAKE) --no-print-directory outputs STAGE=$(STAGE)

deploy-bucket:
	@test -n "$(DEPLOY_BUCKET)" || { echo "make deploy: set DEPLOY_BUCKET to an S3 bucket (in $(PACKAGE_REGION)) for the code"; exit 2; }

outputs:
	$(AWS) cloudformation describe-stacks --region $(PACKAGE_REGION) --stack-name $(STACK_NAME) \
		--query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table

bootstrap: $(STAMP)
	$(BIN)/python -m chalicelib.bootstrap --stage $(STAGE)
