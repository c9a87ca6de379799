
!
ChargePortFault
─Бо╙═б─Бо╙