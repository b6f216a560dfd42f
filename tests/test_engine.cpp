// placeholder: engine tests
