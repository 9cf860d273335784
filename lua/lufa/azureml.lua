--- lufa.azureml: Azure ML clients. The classic Studio web-service clients (Batch Execution, Request-Response,
-- Update Resource, the ARM web-service definition) are this module itself, as they always were; the Azure ML
-- v2 workspace clients (jobs, models, batch and online endpoints) are `lufa.azureml.v2`.
--
--   local azureml = require "lufa.azureml"          -- classic: azureml.batch{...}, azureml.update_arm{...}
--   local v2 = require "lufa.azureml.v2"             -- v2: v2.workspace{...}
--
-- @module lufa.azureml
return require "lufa.azureml.classic"
