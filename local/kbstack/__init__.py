"""kb-autosync local stack: moto in-process + a Lambda function host + a Bedrock Agent emulator.

One concept per module:
  deps          - check the Python packages before importing them
  errors        - StackError, the one-line failures of the launcher
  cfn_yaml      - YAML loader for CloudFormation short tags (!Ref, !GetAtt, !Sub, ...)
  intrinsics    - parameters, conditions and intrinsic function resolution
  template      - the SAM template as the launcher sees it (Globals merged into functions)
  moto_server   - moto's server in this process, on 127.0.0.1
  moto_patches  - Lambda Invoke -> function host; unique S3 EventBridge ids / sequencers; fixes of
                  moto's S3, SNS, DynamoDB and SQS behaviour (the list is in its docstring)
  limits        - AWS's hard limits moto does not enforce (history, payload, item, message size)
  function_host - Lambda Runtime API server + pools of function processes
  esm           - SQS event source mapping poller (Lambda semantics, partial batch responses)
  counters      - request and invocation counts for `make bench` (GET /_kbstack/counters on moto)
  provisioner   - creates what the template declares in moto
  emulator      - the bedrock-emulator child process
  launcher      - `up` / `sweep`: wires everything and writes stack.json
"""

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
