--- `AzureBlobStorage`: the same client as `AzureStorage` (connection string or SAS URI).
-- @module lufa.linked.AzureBlobStorage
return require "lufa.linked.AzureStorage"
